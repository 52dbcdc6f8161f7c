"""`tradingsystem run` end to end: real child processes, real sockets, real files.

Covers: orders approved and filled and the risk manager's positions equal to the sum of the
fills the execution engine logged; a killed child restarted and reported; Ctrl-C (SIGINT) stopping
every child; a malformed config refused with one line and exit code 2.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zlib
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from components.execution import orderlog
from components.risk import statelog
from tests.integration.processes import children_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

# Trades on nearly every 1 s bar, so that a few seconds give several orders.
BUSY_SPEC = {
    "symbols": ["AAPL", "MSFT", "NVDA"],
    "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 20}}},
    "strategy": {"params": {"fast": 1, "slow": 2}, "order_quantity": "5"},
    "risk": {"limits": {"max_position": "15", "max_notional": "100000"}},
    "execution": {"simulated": {"fee_per_share": "0.01"}},
}


@pytest.fixture
def busy_config(tmp_path: Path) -> Path:
    path = tmp_path / "busy.yaml"
    path.write_text(yaml.safe_dump(BUSY_SPEC))
    return path


def _run(*args: str, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "components", "run", *args, "--data-dir", str(data_dir), "--plain"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    """`tradingsystem ARGS` to its end, output captured."""
    return subprocess.run(
        [sys.executable, "-m", "components", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float) -> str:
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if text in line:
            return line
        if not line and process.poll() is not None:
            break
    raise AssertionError(f"no line with {text!r} within {timeout_s} s")


def _fills_logged_by_execution(data_dir: Path) -> list[orderlog.OrderFilled]:
    replay = orderlog.read(data_dir / "execution" / orderlog.ORDER_LOG_NAME)
    return [r for r in replay if isinstance(r, orderlog.OrderFilled)]


def _assert_risk_positions_equal_execution_fills(data_dir: Path) -> int:
    fills = [record.fill for record in _fills_logged_by_execution(data_dir)]
    expected: dict[str, Decimal] = defaultdict(Decimal)
    for fill in fills:
        expected[fill.symbol] += fill.quantity * fill.side.sign
    book = statelog.load_book(data_dir / "risk", Decimal(0))
    on_disk = {p.symbol: p.quantity for p in book.snapshot() if p.quantity}
    assert on_disk == {s: q for s, q in expected.items() if q}
    risk_fill_ids = {
        r.fill.fill_id
        for r in statelog.read(data_dir / "risk" / statelog.STATE_LOG_NAME)
        if isinstance(r, statelog.FillApplied)
    }
    assert risk_fill_ids == {fill.fill_id for fill in fills}
    return len(fills)


def test_run_when_duration_elapses_then_orders_filled_and_positions_equal_fills(
    busy_config: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    process = _run(str(busy_config), "--duration", "10", data_dir=data_dir)
    stdout, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert "The risk manager's state on disk agrees with the" in stdout
    assert "The risk manager's state on disk agrees with simulated's own positions" in stdout
    approvals = [
        r
        for r in statelog.read(data_dir / "risk" / statelog.STATE_LOG_NAME)
        if isinstance(r, statelog.OrderApproved)
    ]
    assert approvals, "no order was approved"
    assert _assert_risk_positions_equal_execution_fills(data_dir) > 0
    assert children_of(data_dir) == {}


@pytest.mark.parametrize("victim", ["execution", "broker", "risk"])
def test_run_when_child_killed_then_restarted_and_trading_resumes(
    busy_config: Path, tmp_path: Path, victim: str
) -> None:
    data_dir = tmp_path / "var"
    process = _run(str(busy_config), "--duration", "14", data_dir=data_dir)
    try:
        _wait_for_line(process, "ready 5/5", timeout_s=30)
        os.kill(children_of(data_dir)[victim], signal.SIGKILL)
        killed_at_ns = time.time_ns()
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 0, stderr
    assert f"{victim} (1 restart)" in stdout.replace("\n", " ")
    _assert_risk_positions_equal_execution_fills(data_dir)
    later = [r for r in _fills_logged_by_execution(data_dir) if r.ts_logged_ns > killed_at_ns]
    assert later, f"no fill after {victim} was killed and restarted"
    assert children_of(data_dir) == {}


def test_run_when_interrupted_then_every_child_stops_and_summary_printed(
    busy_config: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    process = _run(str(busy_config), data_dir=data_dir)
    try:
        _wait_for_line(process, "ready 5/5", timeout_s=30)
        assert set(children_of(data_dir)) == {
            "broker",
            "risk",
            "execution",
            "strategy",
            "marketdata",
        }
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 0, stderr
    assert "agrees with the" in stdout
    assert children_of(data_dir) == {}


def test_run_when_config_malformed_then_one_error_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: [AAPL\nrisk: {limits: {max_position: -5}}\n")
    result = _cli("run", str(bad), "--duration", "1")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: invalid config {bad}: line ")
    assert "not valid YAML" in lines[0]


@pytest.mark.parametrize("path", ["examples/replay.yaml", "components/defaults/local.yaml"])
def test_validate_when_example_then_valid(path: str) -> None:
    result = _cli("validate", path)
    assert result.returncode == 0, result.stderr
    assert "valid TradingSystem" in result.stdout


def test_validate_when_invalid_then_every_field_path_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("symbols: [AAPL, AAPL]\nrisk: {limits: {max_position: -5}}\n")
    bad_params = tmp_path / "bad_params.yaml"
    bad_params.write_text("symbols: [AAPL]\nstrategy: {params: {fast: 0, slow: 2}}\n")
    params = _cli("validate", str(bad_params))
    assert params.returncode == 2
    assert "strategy.params.fast: Input should be greater than or equal to 1" in params.stderr
    result = _cli("validate", str(bad))
    assert result.returncode == 2
    assert "symbols: symbols must be unique (repeated: AAPL)" in result.stderr
    assert "risk.limits.max_position: Input should be greater than 0 (was -5)" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_when_a_component_would_refuse_its_config_then_nothing_starts(tmp_path: Path) -> None:
    """Strategy parameters and the replay file are checked before any child starts."""
    spec = {
        "symbols": ["AAPL"],
        "strategy": {"params": {"fast": 5, "slow": 2}},
        "marketdata": {"feed": {"kind": "replay", "replay": {"path": str(tmp_path / "no.csv")}}},
    }
    config = tmp_path / "spec.yaml"
    config.write_text(yaml.safe_dump(spec))
    result = _cli("run", str(config), "--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert "strategy.params.slow: must be greater than fast (5) (was 2)" in result.stderr
    assert "marketdata.feed.replay.path:" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_run_when_state_log_damaged_then_one_error_line_and_exit_1(tmp_path: Path) -> None:
    """A damaged line before the last cannot be replayed around: refuse to start, say where."""
    (tmp_path / "risk").mkdir()
    body = b'{"x": 1}'
    (tmp_path / "risk" / statelog.STATE_LOG_NAME).write_bytes(b"deadbeef " + body + b"\nlast\n")
    result = _cli("run", "--data-dir", str(tmp_path), "--duration", "1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: journal {tmp_path / 'risk' / statelog.STATE_LOG_NAME}: line 1 is corrupt: "
        f"CRC mismatch: stored deadbeef, computed {zlib.crc32(body):08x} (at byte 0). "
        f"See `tradingsystem state {tmp_path}`; "
        f"`tradingsystem state {tmp_path} --repair` moves the damaged lines aside."
    ]
