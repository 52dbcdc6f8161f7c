"""The committed CRD is the one the models generate, the API server would accept it, and it
admits exactly what `parse_spec` admits: every example, and none of the invalid systems."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components import crd
from components.core.config import load_spec
from tests.operator.crd_schema import CrdSchema

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "crds" / "tradingsystem.yaml"
MANIFESTS = [*sorted(ROOT.glob("examples/*.yaml")), ROOT / "components/defaults/local.yaml"]


@pytest.fixture(scope="module")
def schema() -> CrdSchema:
    return CrdSchema(crd.definition())


def test_committed_crd_is_generated_from_the_models() -> None:
    assert COMMITTED.read_text() == crd.render(), (
        "crds/tradingsystem.yaml is stale: run `tradingsystem crd > crds/tradingsystem.yaml`"
    )


def test_crd_is_a_valid_custom_resource_definition() -> None:
    kubernetes_validate.validate(crd.definition(), "1.31", strict=True)


def test_crd_names_columns_and_status_subresource() -> None:
    definition = crd.definition()
    names = definition["spec"]["names"]
    version = definition["spec"]["versions"][0]
    assert definition["metadata"]["name"] == "tradingsystems.trading.dev"
    assert (names["shortNames"], names["categories"]) == (["ts"], ["trading"])
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [column["name"] for column in version["additionalPrinterColumns"]]
    assert columns == ["Phase", "Breaker", "Halted", "Symbols", "Ready", "Age"]


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_example_manifest_is_admitted(schema: CrdSchema, path: Path) -> None:
    load_spec(path)  # and valid for the models too
    _, problems = schema.admit(yaml.safe_load(path.read_text()))
    assert problems == []


def test_defaults_of_the_crd_are_the_models_defaults(schema: CrdSchema) -> None:
    """An object defaulted by the API server parses to the same spec as the bare one."""
    bare = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": "demo"},
        "spec": {"symbols": ["AAPL"]},
    }
    stored, problems = schema.admit(bare)
    assert problems == []
    from components.core.config import parse_spec

    assert parse_spec(stored)[1] == parse_spec(bare)[1]
    assert stored["spec"]["pods"]["execution"]["resources"]["requests"]["memory"] == "128Mi"


def _manifest(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": "demo"},
        "spec": {"symbols": ["AAPL"], **spec},
    }


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"symbols": ["AAPL", "AAPL"]}, "spec.symbols: ['AAPL', 'AAPL'] has non-unique elements"),
        ({"symbols": ["aapl"]}, "spec.symbols[0]: 'aapl' does not match"),
        ({"strategy": {"order_quantity": "0"}}, "spec.strategy.order_quantity: '0' does not match"),
        ({"strategy": {"order_quantity": 0.5}}, "spec.strategy.order_quantity: 0.5 is not valid"),
        ({"strategy": {"bar_interval_s": 5}}, "spec.strategy.bar_interval_s: must be one of"),
        ({"marketdata": {"feed": {"kind": "replay"}}}, "spec.marketdata.feed.replay: required"),
        ({"broker": {"publish_port": 5556}}, "spec.broker: the four ports must differ"),
        ({"resume_policy": "sometimes"}, "spec.resume_policy: 'sometimes' is not one of"),
        ({"pods": {"strategy": {"replicas": 2}}}, "spec.pods.strategy.replicas: 2 is greater"),
        (
            {"pods": {"risk": {"env": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]}}},
            "spec.pods.risk.env: names must be unique",
        ),
        ({"storage": {"size": "lots"}}, "spec.storage.size: 'lots' does not match"),
        ({"colour": "red"}, "Additional properties are not allowed ('colour' was unexpected)"),
    ],
)
def test_invalid_system_is_refused_naming_the_field(
    schema: CrdSchema, spec: dict[str, object], expected: str
) -> None:
    _, problems = schema.admit(_manifest(**spec))
    assert any(expected in problem for problem in problems), problems


def test_name_too_long_for_its_children_is_refused(schema: CrdSchema) -> None:
    manifest = _manifest()
    manifest["metadata"] = {"name": "a" * 41}
    _, problems = schema.admit(manifest)
    assert problems == [f"(root): {crd.NAME_RULE['message']}"]
