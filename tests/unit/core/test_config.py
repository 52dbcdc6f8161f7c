"""Config models: defaults, manifests and bare specs, and one clear line per invalid field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from components.core.config import TradingSystemSpec, load_spec, parse_spec
from components.core.errors import ConfigError


def _problems(document: object) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_spec(document, "test.yaml")
    return caught.value.problems


def test_parse_when_bare_spec_then_defaults_fill_the_rest() -> None:
    name, spec = parse_spec({"symbols": ["AAPL"]})
    assert name == "tradingsystem"
    assert spec.risk.limits.max_position == Decimal(100)
    assert spec.marketdata.feed.kind == "synthetic"


def test_parse_when_manifest_then_name_from_metadata() -> None:
    document = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": "paper"},
        "spec": {"symbols": ["AAPL", "BRK.B"]},
    }
    name, spec = parse_spec(document)
    assert (name, spec.symbols) == ("paper", ["AAPL", "BRK.B"])


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        ({"symbols": []}, "symbols: List should have at least 1 item after validation"),
        ({"symbols": ["aapl"]}, "symbols.0: String should match pattern"),
        ({"symbols": ["AAPL", "AAPL"]}, "symbols: symbols must be unique (repeated: AAPL)"),
        ({}, "symbols: Field required"),
        ({"symbols": ["A"], "bogus": 1}, "bogus: Extra inputs are not permitted"),
        (
            {"symbols": ["A"], "risk": {"limits": {"max_position": -5}}},
            "risk.limits.max_position: Input should be greater than 0 (was -5)",
        ),
        (
            {"symbols": ["A"], "risk": {"limits": {"max_notional": "NaN"}}},
            "risk.limits.max_notional:",
        ),
        (
            {"symbols": ["A"], "marketdata": {"feed": {"kind": "replay"}}},
            "marketdata.feed: replay: required when kind is replay",
        ),
        (
            {"symbols": ["A"], "marketdata": {"feed": {"backup": {"kind": "synthetic"}}}},
            "marketdata.feed: backup: only a network feed (kind alpaca) can fail over",
        ),
        (
            {
                "symbols": ["A"],
                "marketdata": {"feed": {"kind": "alpaca", "backup": {"kind": "alpaca"}}},
            },
            "marketdata.feed: backup.alpaca: must be another stream than the primary's",
        ),
        (
            {
                "symbols": ["A"],
                "marketdata": {"feed": {"kind": "alpaca", "alpaca": {"url": "http://x"}}},
            },
            "marketdata.feed.alpaca.url: String should match pattern",
        ),
        (
            {"symbols": ["A"], "marketdata": {"feed": {"alpaca": {"source": "crypto"}}}},
            "marketdata.feed.alpaca.source: Input should be 'iex', 'sip' or 'test'",
        ),
        (
            {"symbols": ["A"], "strategy": {"bar_interval_s": 60}},
            "(root): strategy.bar_interval_s: 60 is not one of marketdata.bar_intervals_s [1]",
        ),
        (
            {"symbols": ["A"], "broker": {"publish_port": 6000, "subscribe_port": 6000}},
            "(root): broker: the four ports must differ",
        ),
        (
            {"symbols": ["A"], "strategy": {"class_path": "no colon"}},
            "strategy.class_path: String should match pattern",
        ),
        (["AAPL"], "(root): expected a mapping, found list"),
    ],
)
def test_parse_when_invalid_then_error_names_the_field(document: object, expected: str) -> None:
    problems = _problems(document)
    assert any(p.startswith(expected) for p in problems), problems


def test_parse_when_manifest_invalid_then_paths_start_at_spec() -> None:
    document = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "spec": {"symbols": ["AAPL"], "halted": "perhaps"},
    }
    [problem] = _problems(document)
    assert problem.startswith("spec.halted: Input should be a valid boolean")
    assert problem.endswith("(was 'perhaps')")


def test_parse_when_wrong_kind_then_error_names_kind() -> None:
    document = {"apiVersion": "v1", "kind": "ConfigMap", "spec": {"symbols": ["AAPL"]}}
    problems = _problems(document)
    assert any(p.startswith("apiVersion:") for p in problems)
    assert any(p.startswith("kind:") for p in problems)


def test_error_when_single_problem_then_one_line() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_spec({"symbols": ["aapl"]}, "demo.yaml")
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("invalid config demo.yaml: symbols.0:")


def test_load_when_yaml_malformed_then_error_with_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("symbols: [AAPL\nrisk: {\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+: not valid YAML"):
        load_spec(path)


def test_load_when_missing_then_error_says_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read: No such file or directory"):
        load_spec(tmp_path / "absent.yaml")


def test_spec_is_frozen() -> None:
    spec = TradingSystemSpec(symbols=["AAPL"])
    with pytest.raises(ValueError, match="frozen"):
        spec.halted = True  # type: ignore[misc]


def test_parse_when_pod_env_reserved_then_error_names_the_variable() -> None:
    problems = _problems(
        {
            "symbols": ["AAPL"],
            "pods": {"execution": {"env": [{"name": "TS_DATA_DIR", "value": "/"}]}},
        }
    )
    assert problems == [
        "pods.execution.env.0.name: TS_DATA_DIR is set by the operator (reserved: TS_*, APCA_*)"
    ]


def test_parse_when_pod_env_repeated_then_error_names_the_repeat() -> None:
    env = [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    problems = _problems({"symbols": ["AAPL"], "pods": {"risk": {"env": env}}})
    assert problems == ["pods.risk.env: env: names must be unique (repeated: A)"]


def test_parse_when_kubernetes_fields_absent_then_defaults_are_safe() -> None:
    _, spec = parse_spec({"symbols": ["AAPL"]})
    assert (spec.resume_policy, spec.storage.retain_on_delete) == ("manual", True)
    assert spec.pods.strategy.replicas == 1 and spec.monitoring.service_monitor is False


def test_load_when_not_utf8_then_one_error_naming_file_line_and_byte(tmp_path: Path) -> None:
    """Latin-1 from an old editor, say: a config error, not a UnicodeDecodeError."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes("symbols: [AAPL]\n# caf\u00e9 au lait\n".encode("latin-1"))
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert caught.value.problems == [
        "line 2, column 6: not UTF-8 text (byte 0xe9 at offset 21: invalid continuation byte)"
    ]
    assert str(caught.value) == f"invalid config {path}: " + caught.value.problems[0]


def test_load_when_utf8_with_byte_order_mark_then_loads(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbfsymbols: [AAPL]\n")
    assert load_spec(path)[1].symbols == ["AAPL"]


def test_load_when_control_character_then_error_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "control.yaml"
    path.write_bytes(b"symbols: [AAPL]\nhalted: false\x01\n")
    with pytest.raises(ConfigError) as caught:
        load_spec(path)
    assert caught.value.problems == [
        "line 2, column 14: not valid YAML: special characters are not allowed (#x0001)"
    ]
