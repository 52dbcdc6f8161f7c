"""The local supervisor's pure parts: restart backoff, the embedded default, and the halt that
follows the risk manager's breaker."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from components.core.config import parse_spec
from components.core.errors import CorruptLogError
from components.core.events import BreakerState, RiskState
from components.execution import orderlog
from components.local import Supervisor, default_document, main, restart_delay_s
from components.risk import breaker, statelog
from components.risk.engine import RiskEngine


def test_restart_delay_when_failures_repeat_then_doubles_up_to_thirty_seconds() -> None:
    assert [restart_delay_s(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_default_document_when_parsed_then_a_manifest_of_the_simulated_demo() -> None:
    document = default_document()
    assert (document["apiVersion"], document["kind"]) == ("trading.dev/v1alpha1", "TradingSystem")
    name, spec = parse_spec(document)
    assert name == "demo"
    assert spec.marketdata.feed.kind == "synthetic"
    assert spec.execution.venue == "simulated"


def risk_state(breaker: BreakerState) -> RiskState:
    return RiskState(
        breaker=breaker,
        halted_reason="",
        cash=Decimal(1),
        equity=Decimal(1),
        realized_pnl=Decimal(0),
        positions=[],
        ts_event_ns=1,
        breaker_reason="AAPL fell 15%",
    )


async def test_on_risk_state_when_breaker_opens_then_execution_halted_until_it_leaves_open(
    tmp_path: Path,
) -> None:
    _, spec = parse_spec(default_document())
    supervisor = Supervisor("demo", spec, tmp_path / "config.yaml", tmp_path)
    supervisor._may_run.set()
    supervisor.on_risk_state(risk_state(BreakerState.CLOSED))
    assert not supervisor.halted and supervisor._may_run.is_set()
    supervisor.on_risk_state(risk_state(BreakerState.OPEN))
    assert supervisor.halted and not supervisor._may_run.is_set()
    assert supervisor._halt_task is not None
    await supervisor._halt_task  # nothing running here: returns at once
    supervisor.on_risk_state(risk_state(BreakerState.OPEN))  # periodic repeat: no second stop
    supervisor.on_risk_state(risk_state(BreakerState.HALF_OPEN))
    assert not supervisor.halted and supervisor._may_run.is_set()
    assert any("execution halted" in line for line in supervisor.activity.recent)


def test_supervisor_when_breaker_left_open_on_disk_then_execution_starts_halted(
    tmp_path: Path,
) -> None:
    _, spec = parse_spec(default_document())
    store, _ = statelog.StateStore.open(tmp_path / "risk", spec.risk.initial_cash, 10_000)
    engine = RiskEngine(spec, store=store)
    engine.start("demo", 1_710_165_600 * 10**9)
    engine.trip(breaker.Trigger.MANUAL, "left open", 1_710_165_601 * 10**9)
    store.close()
    supervisor = Supervisor("demo", spec, tmp_path / "config.yaml", tmp_path)
    assert supervisor.halted and supervisor.breaker is BreakerState.OPEN
    supervisor.on_risk_state(risk_state(BreakerState.CLOSED))
    assert not supervisor.halted and supervisor._may_run.is_set()


def test_main_when_order_log_damaged_then_refused_before_anything_is_written(
    tmp_path: Path,
) -> None:
    """Every journal of every component is checked, not the risk manager's alone: else the
    execution engine would crash-loop and the run still end with 0."""
    path = tmp_path / "execution" / orderlog.ORDER_LOG_NAME
    log, _ = orderlog.OrderLog.open(path)
    log.append(orderlog.FillConfirmed(ts_logged_ns=1, fill_id="f1"))
    log.append(orderlog.FillConfirmed(ts_logged_ns=2, fill_id="f2"))
    log.close()
    data = path.read_bytes()
    path.write_bytes(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])
    second_line_at = data.index(b"\n") + 1

    with pytest.raises(CorruptLogError) as caught:
        main(None, tmp_path, 1.0, plain=True)

    message = str(caught.value)
    assert message.startswith(f"journal {path}: line 2 is corrupt: CRC mismatch")
    assert f"(at byte {second_line_at})" in message
    assert f"`tradingsystem state {tmp_path} --repair`" in message
    assert "\n" not in message
    assert sorted(p.name for p in tmp_path.iterdir()) == ["execution"]
