"""`tradingsystem state DATA_DIR`: positions, cash, P&L, breaker and history, open orders and the
last sequence from the risk manager's log, open orders and unconfirmed fills from the execution
engine's; as text and as JSON; a torn tail reported but left alone; nothing ever written."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from components import cli
from components.core.config import TradingSystemSpec
from components.core.events import Fill, Order, OrderStatus, OrderUpdate, Side, Signal
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
    spec = TradingSystemSpec.model_validate(
        {"symbols": ["AAPL"], "risk": {"stops": {"trailing_stop_pct": 5}}}
    )
    store, _ = statelog.StateStore.open(tmp_path / "risk", spec.risk.initial_cash, 10_000)
    engine = RiskEngine(spec, store=store)
    engine.start("test", T0)
    engine.on_quote(quote("99.99", "100.01"), T0)
    filled = order_for(engine, "s1", 10, T0 + S)
    engine.on_fill(fill_of(filled, "f1"), T0 + S)
    engine.on_quote(quote("102.50", "102.52"), T0 + S)  # the trailing stop's peak, logged
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
            "cost": "1000.1",
            "realized_pnl": "-0.05",
            "fees": "0.05",
            "trailing_peak": "102.50",
        }
    ]
    assert [o["quantity"] for o in risk["open_orders"]] == ["5"]
    assert (risk["breaker"]["state"], risk["breaker"]["reason"]) == ("open", "by hand")
    assert [h["trigger"] for h in risk["breaker"]["history"]] == ["manual"]
    # log opened, session started, approved, filled, peak, approved, breaker changed
    assert risk["last_sequence"] == 7 and risk["session"] == "2024-03-11"
    execution = result["execution"]
    assert [o["quantity"] for o in execution["open_orders"]] == ["10", "5"]
    assert [f["fill_id"] for f in execution["unconfirmed_fills"]] == ["f1"]


def test_state_text_when_logs_present_then_readable_summary(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["state", str(data_dir / "risk")]) == 0
    text = capsys.readouterr().out
    assert "last sequence 7" in text
    assert "breaker open since 2024-03-11 14:00:03 UTC: by hand" in text
    assert "AAPL" in text and "10 @ 100.01" in text and "trailing peak 102.50" in text
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


def test_state_when_execution_ran_then_every_order_with_client_id_state_and_fills(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The order section lists every order the engine handled, terminal ones too."""

    def order(client_order_id: str, quantity: int) -> Order:
        return Order(
            client_order_id=client_order_id,
            signal_id=client_order_id,
            symbol="AAPL",
            side=Side.BUY,
            quantity=D(quantity),
            ts_event_ns=T0,
            ts_origin_ns=T0,
        )

    done, refused = order("sys-1", 10), order("sys-2", 5)
    log, _ = orderlog.OrderLog.open(tmp_path / "execution" / orderlog.ORDER_LOG_NAME)
    log.append(orderlog.OrderReceived(ts_logged_ns=T0, order=done, trace_id="t1"))
    for fill_id, quantity in (("sys-1:4", 4), ("sys-1:10", 6)):
        fill = msgspec.structs.replace(fill_of(done, fill_id), quantity=D(quantity))
        log.append(orderlog.OrderFilled(ts_logged_ns=T0, fill=fill))
    update = OrderUpdate(
        client_order_id="sys-1",
        venue_order_id="v-1",
        symbol="AAPL",
        status=OrderStatus.FILLED,
        filled_quantity=D(10),
        avg_fill_price=D("100.01"),
        ts_event_ns=T0,
    )
    log.append(orderlog.OrderUpdated(ts_logged_ns=T0, update=update))
    log.append(orderlog.OrderReceived(ts_logged_ns=T0, order=refused, trace_id="t2"))
    rejected = msgspec.structs.replace(
        update, client_order_id="sys-2", status=OrderStatus.REJECTED, reason="VENUE_REJECTED: x"
    )
    log.append(orderlog.OrderUpdated(ts_logged_ns=T0, update=rejected))
    log.close()

    assert cli.main(["state", str(tmp_path), "--json"]) == 0
    orders = json.loads(capsys.readouterr().out)["execution"]["orders"]
    assert [(o["client_order_id"], o["status"], o["filled"]) for o in orders] == [
        ("sys-1", "filled", "10"),
        ("sys-2", "rejected", "0"),
    ]
    assert [(f["fill_id"], f["quantity"]) for f in orders[0]["fills"]] == [
        ("sys-1:4", "4"),
        ("sys-1:10", "6"),
    ]
    assert orders[0]["avg_price"] == "100.01" and orders[0]["venue_order_id"] == "v-1"
    assert cli.main(["state", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "sys-1 buy 10 AAPL market: filled, filled 10 @ 100.01" in text
    assert "fill sys-1:10 6 @ 100.01 fee 0.05" in text
    assert "sys-2 buy 5 AAPL market: rejected (VENUE_REJECTED: x), filled 0" in text


# --- damage and repair ------------------------------------------------------------------------


def damage_last_line(path: Path) -> tuple[bytes, int]:
    """Flip a body byte of the last (complete) line of `path`; the old bytes and its offset."""
    data = path.read_bytes()
    start = data.rstrip(b"\n").rfind(b"\n") + 1
    path.write_bytes(data[:-5] + bytes([data[-5] ^ 0x01]) + data[-4:])
    return data, start


def test_state_when_last_line_damaged_then_file_line_and_offset_reported_and_exit_1(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The other journal is still reported; nothing is written."""
    log = data_dir / "risk" / statelog.STATE_LOG_NAME
    data, start = damage_last_line(log)
    before = files(data_dir)
    line = data.count(b"\n")

    assert cli.main(["state", str(data_dir), "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["risk"]["damage"] == {
        "file": str(log),
        "line": line,
        "offset": start,
        "problem": result["risk"]["damage"]["problem"],
    }
    assert result["risk"]["damage"]["problem"].startswith("CRC mismatch")
    assert [f["fill_id"] for f in result["execution"]["unconfirmed_fills"]] == ["f1"]

    assert cli.main(["state", str(data_dir)]) == 1
    out, err = capsys.readouterr()
    assert f"DAMAGED: journal {log}: line {line} is corrupt: CRC mismatch" in out
    assert f"(at byte {start})" in out
    assert "execution (" in out
    assert err.strip().splitlines() == [
        f"error: journal {log}: line {line} is corrupt: "
        + result["risk"]["damage"]["problem"]
        + f" (at byte {start}). See `tradingsystem state {data_dir}`; "
        f"`tradingsystem state {data_dir} --repair` moves the damaged lines aside."
    ]
    assert files(data_dir) == before


def test_state_repair_when_a_line_damaged_then_suffix_moved_aside_said_and_the_log_loads(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log = data_dir / "execution" / orderlog.ORDER_LOG_NAME
    lines = log.read_bytes().split(b"\n")
    start = len(lines[0]) + 1
    lines[1] = lines[1].replace(b'"f1"', b'"f2"')  # the fill: CRC now wrong, JSON intact
    log.write_bytes(b"\n".join(lines))
    damaged = log.read_bytes()

    assert cli.main(["state", str(data_dir), "--repair"]) == 0
    out = capsys.readouterr().out
    (side_file,) = log.parent.glob("orders.log.damaged-*")
    assert side_file.read_bytes() == damaged[start:]
    assert log.read_bytes() == damaged[:start]
    lost = len(damaged) - start
    assert f"Repaired {log}: moved 2 lines ({lost} bytes) from line 2 (byte {start})" in out
    assert f"to {side_file}" in out
    assert "line 2: CRC mismatch" in out and '"fill_id":"f2"' in out  # what it held
    assert "line 3: intact, but after the damage" in out and '"order_received"' in out
    # The risk log was sound and is left alone; the repaired one loads.
    assert not list((data_dir / "risk").glob("*.damaged-*"))
    assert cli.main(["state", str(data_dir), "--json"]) == 0
    execution = json.loads(capsys.readouterr().out)["execution"]
    assert execution["records"] == 1 and execution["unconfirmed_fills"] == []


def test_state_repair_when_nothing_damaged_then_nothing_written(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = files(data_dir)
    assert cli.main(["state", str(data_dir), "--repair"]) == 0
    assert "Nothing to repair" in capsys.readouterr().out
    assert files(data_dir) == before


def test_state_repair_when_a_replayed_segment_damaged_then_it_and_all_later_moved_aside(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable newest snapshot makes restore replay an archived segment: damage there
    leaves a hole, so every later file goes aside too (records after a hole would apply wrong)."""
    spec = TradingSystemSpec.model_validate({"symbols": ["AAPL"]})
    risk_dir = tmp_path / "risk"
    store, _ = statelog.StateStore.open(risk_dir, spec.risk.initial_cash, 3)
    engine = RiskEngine(spec, store=store)
    engine.start("test", T0)
    engine.on_quote(quote("99.99", "100.01"), T0)
    for n in range(1, 6):
        order_for(engine, f"s{n}", 1, T0 + n * S)
        if store.snapshot_due:
            store.write_snapshot(engine.state, T0 + n * S)
    store.close()
    snapshots = sorted(risk_dir.glob("snapshot-*.snap"))
    segments = sorted(risk_dir.glob("state-*.log"))
    assert len(snapshots) == 2 and len(segments) == 1, sorted(risk_dir.iterdir())
    snapshots[-1].write_bytes(b"garbage\n")  # the older snapshot + the segment after it
    replayed = segments[-1]
    data, start = damage_last_line(replayed)
    active = (risk_dir / statelog.STATE_LOG_NAME).read_bytes()

    assert cli.main(["state", str(tmp_path)]) == 1
    assert f"DAMAGED: journal {replayed}: line" in capsys.readouterr().out
    assert cli.main(["state", str(tmp_path), "--repair"]) == 0
    out = capsys.readouterr().out
    assert f"Repaired {replayed}: moved 1 line" in out
    active_path = risk_dir / statelog.STATE_LOG_NAME
    assert f"Repaired {active_path}: moved" in out
    assert replayed.read_bytes() == data[:start]
    (side,) = risk_dir.glob(f"{statelog.STATE_LOG_NAME}.damaged-*")
    assert side.read_bytes() == active and active_path.read_bytes() == b""
    assert cli.main(["state", str(tmp_path), "--json"]) == 0
    risk = json.loads(capsys.readouterr().out)["risk"]
    assert risk["damage"] is None


def test_state_repair_when_records_missing_then_refused_and_nothing_written(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A gap in the sequence has no damaged suffix: cutting would not make the log whole."""
    log = data_dir / "risk" / statelog.STATE_LOG_NAME
    lines = log.read_bytes().split(b"\n")
    log.write_bytes(b"\n".join(lines[:1] + lines[2:]))
    before = files(data_dir)
    assert cli.main(["state", str(data_dir), "--repair"]) == 1
    out, err = capsys.readouterr()
    assert "record 3 follows record 1: records lost" in out
    assert err.startswith("error: cannot repair: state log ")
    assert files(data_dir) == before
