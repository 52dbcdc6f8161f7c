"""`tradingsystem state DATA_DIR`: positions, cash, P&L, breaker and history, open orders and the
last sequence from the risk manager's log, open orders and unconfirmed fills from the execution
engine's; as text and as JSON; a torn tail reported but left alone; nothing ever written."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from components import cli
from components.core.config import TradingSystemSpec
from components.core.events import Fill, Order, Side, Signal
from components.execution import orderlog
from components.risk import breaker, lifecycle, statelog
from components.risk.engine import RiskEngine
from tests.factories import quote

D = Decimal
S = 1_000_000_000
T0 = 1_710_165_600 * S  # 2024-03-11 14:00 UTC


def order_for(engine: RiskEngine, signal_id: str, quantity: int, now: int) -> Order:
    signal = Signal(
        signal_id=signal_id,
        strategy="test",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        ts_event_ns=now,
        ts_origin_ns=now,
    )
    decision = engine.check(signal, now + S, now)
    assert isinstance(decision, lifecycle.Approved)
    return decision.order


def fill_of(order: Order, fill_id: str) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=order.client_order_id,
        symbol="AAPL",
        side=order.side,
        quantity=order.quantity,
        price=D("100.01"),
        fee=D("0.05"),
        venue="test",
        ts_event_ns=T0,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A run's data directory: a risk log with a position, an open order and a breaker trip,
    and an order log with one open order and one unconfirmed fill."""
    spec = TradingSystemSpec(symbols=["AAPL"])
    store, _ = statelog.StateStore.open(tmp_path / "risk", spec.risk.initial_cash, 10_000)
    engine = RiskEngine(spec, store=store)
    engine.start("test", T0)
    engine.on_quote(quote("99.99", "100.01"), T0)
    filled = order_for(engine, "s1", 10, T0 + S)
    engine.on_fill(fill_of(filled, "f1"), T0 + S)
    working = order_for(engine, "s2", 5, T0 + 2 * S)
    engine.trip(breaker.Trigger.MANUAL, "by hand", T0 + 3 * S)
    store.close()

    log, _ = orderlog.OrderLog.open(tmp_path / "execution" / orderlog.ORDER_LOG_NAME)
    log.append(orderlog.OrderReceived(ts_logged_ns=T0, order=filled, trace_id="t1"))
    log.append(orderlog.OrderFilled(ts_logged_ns=T0, fill=fill_of(filled, "f1")))
    log.append(orderlog.OrderReceived(ts_logged_ns=T0, order=working, trace_id="t2"))
    log.close()
    return tmp_path


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in directory.rglob("*.log*")}


def test_state_json_when_logs_present_then_everything_they_hold(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["state", str(data_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    risk = result["risk"]
    assert risk["cash"] == "98999.85"  # 100 000 - 10 x 100.01 - 0.05
    assert risk["equity_at_cost"] == "99999.95"
    assert risk["realized_pnl"] == "-0.05" and risk["fees"] == "0.05"
    assert risk["positions"] == [
        {
            "symbol": "AAPL",
            "quantity": "10",
            "avg_price": "100.01",
            "cost": "1000.10",
            "realized_pnl": "-0.05",
            "fees": "0.05",
        }
    ]
    assert [o["quantity"] for o in risk["open_orders"]] == ["5"]
    assert (risk["breaker"]["state"], risk["breaker"]["reason"]) == ("open", "by hand")
    assert [h["trigger"] for h in risk["breaker"]["history"]] == ["manual"]
    # log opened, session started, approved, filled, approved, breaker changed
    assert risk["last_sequence"] == 6 and risk["session"] == "2024-03-11"
    execution = result["execution"]
    assert [o["quantity"] for o in execution["open_orders"]] == ["10", "5"]
    assert [f["fill_id"] for f in execution["unconfirmed_fills"]] == ["f1"]


def test_state_text_when_logs_present_then_readable_summary(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["state", str(data_dir / "risk")]) == 0
    text = capsys.readouterr().out
    assert "last sequence 6" in text
    assert "breaker open since 2024-03-11 14:00:03 UTC: by hand" in text
    assert "AAPL" in text and "10 @ 100.01" in text
    assert "execution: no order log found" in text


def test_state_when_tail_torn_then_reported_and_nothing_written(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = data_dir / "risk" / statelog.STATE_LOG_NAME
    log.write_bytes(log.read_bytes() + b'1234abcd {"record":"fill_ap')
    before = files(data_dir)
    assert cli.main(["state", str(data_dir), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["risk"]["torn_lines"] == 1
    assert files(data_dir) == before


def test_state_when_middle_line_corrupt_then_error_names_the_file(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = data_dir / "risk" / statelog.STATE_LOG_NAME
    lines = log.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b"session", b"sessi0n")
    log.write_bytes(b"\n".join(lines))
    assert cli.main(["state", str(data_dir)]) == 1
    assert f"journal {log}: line 2 is corrupt" in capsys.readouterr().err


def test_state_when_no_logs_then_says_so_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["state", str(tmp_path)]) == 1
    assert "risk: no state log found" in capsys.readouterr().out
