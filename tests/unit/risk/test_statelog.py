"""The state log: round trip, fsynced appends, torn and corrupt lines, and replay into the book
(`load_book`), including pending approvals and their release."""

from __future__ import annotations

import logging
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from components.core.errors import CorruptLogError
from components.core.events import Fill, Order, OrderStatus, Side
from components.risk import records, statelog
from components.runtime import journal

D = Decimal


def order(client_order_id: str = "c1", quantity: int = 10) -> Order:
    return Order(
        client_order_id=client_order_id,
        signal_id=f"s-{client_order_id}",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        ts_event_ns=1,
        ts_origin_ns=1,
    )


def fill(fill_id: str, quantity: int, price: str, client_order_id: str = "c1") -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=client_order_id,
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(quantity),
        price=D(price),
        fee=D("0.10"),
        venue="test",
        ts_event_ns=1,
    )


RECORDS: list[statelog.Record] = [
    statelog.LogOpened(ts_logged_ns=1, system="test", initial_cash=D(1000)),
    statelog.OrderApproved(ts_logged_ns=2, order=order()),
    statelog.OrderAcknowledged(ts_logged_ns=3, client_order_id="c1"),
    statelog.FillApplied(ts_logged_ns=4, fill=fill("f1", 4, "10.50")),
]


def write(path: Path, records: list[statelog.Record]) -> None:
    log, _ = statelog.StateLog.open(path)
    for record in records:
        log.append(record)
    log.close()


def test_read_when_records_appended_then_returns_them_in_order(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    write(path, RECORDS)
    replay = statelog.read(path)
    assert list(replay) == RECORDS
    assert replay.torn_lines == 0
    assert replay.valid_bytes == path.stat().st_size


def test_encode_line_when_record_has_decimals_then_json_strings_with_crc(tmp_path: Path) -> None:
    line = journal.encode(RECORDS[3])
    assert line.endswith(b"\n") and line[8:9] == b" "
    assert b'"price":"10.50"' in line and b'"record":"fill_applied"' in line


def test_read_when_file_missing_then_no_records(tmp_path: Path) -> None:
    assert list(statelog.read(tmp_path / "absent.log")) == []


def test_read_when_last_line_torn_then_skipped_with_warning_and_count(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "state.log"
    write(path, RECORDS)
    with path.open("ab") as file:
        file.write(journal.encode(RECORDS[1])[:25])  # a crash mid-write
    with caplog.at_level(logging.WARNING):
        replay = statelog.read(path)
    assert list(replay) == RECORDS
    assert replay.torn_lines == 1
    assert "Skipped the torn last line 5" in caplog.text


def test_read_when_last_complete_line_corrupt_then_error_names_the_line(tmp_path: Path) -> None:
    """Its newline was written and fsynced: it may be a fill already acted on, never skipped."""
    path = tmp_path / "state.log"
    write(path, RECORDS)
    path.write_bytes(path.read_bytes()[:-3] + b"}}\n")
    with pytest.raises(CorruptLogError, match=r"line 4 is corrupt: CRC mismatch"):
        statelog.read(path)


def test_read_when_middle_line_corrupt_then_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    write(path, RECORDS)
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"c1"', b'"c2"')
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(CorruptLogError, match=r"line 2 is corrupt: CRC mismatch"):
        statelog.read(path)


def test_open_when_tail_torn_then_cut_off_before_appending(tmp_path: Path) -> None:
    path = tmp_path / "state.log"
    write(path, RECORDS[:2])
    with path.open("ab") as file:
        file.write(b'deadbeef {"rec')
    log, replay = statelog.StateLog.open(path)
    assert replay.torn_lines == 1
    log.append(RECORDS[2])
    log.close()
    assert list(statelog.read(path)) == RECORDS[:3]


def test_load_book_when_log_has_fills_then_book_replays_them(tmp_path: Path) -> None:
    write(tmp_path / statelog.STATE_LOG_NAME, RECORDS)
    book = statelog.load_book(tmp_path, initial_cash=D(5))
    assert book.initial_cash == D(1000)  # the log's, not the argument's
    assert book.quantity("AAPL") == D(4)
    assert book.cash == D(1000) - D(42) - D("0.10")


def test_load_book_when_no_log_then_empty_book_with_initial_cash(tmp_path: Path) -> None:
    book = statelog.load_book(tmp_path / "risk", initial_cash=D(500))
    assert (book.cash, book.holdings) == (D(500), {})


def test_replay_when_fills_and_closes_then_pending_approvals_follow() -> None:
    state = statelog.replay(RECORDS, D(0))
    approval = state.approvals["c1"]
    assert (approval.acknowledged, approval.remaining) == (True, D(6))
    assert state.signals == {"s-c1": "c1"} and state.fill_ids == {"f1"}

    state.apply(statelog.FillApplied(ts_logged_ns=5, fill=fill("f2", 6, "10.60")))
    assert "c1" not in state.approvals  # filled completely

    state.apply(statelog.OrderApproved(ts_logged_ns=6, order=order("c2")))
    state.apply(
        statelog.OrderClosed(ts_logged_ns=7, client_order_id="c2", status=OrderStatus.EXPIRED)
    )
    assert state.approvals == {}


def test_replay_when_stop_peak_logged_then_kept_while_position_lasts_and_dropped_after() -> None:
    state = statelog.replay(RECORDS, D(0))  # long 4
    peak = statelog.StopPeakMoved(ts_logged_ns=5, symbol="AAPL", long=True, price=D("11.20"))
    state.apply(peak)
    state.apply(statelog.FillApplied(ts_logged_ns=6, fill=fill("f2", 2, "10.60")))  # adds
    assert state.stop_peaks == {"AAPL": peak}

    sell = msgspec.structs.replace(fill("f3", 6, "11.00"), side=Side.SELL)
    state.apply(statelog.FillApplied(ts_logged_ns=7, fill=sell))  # flat: the position is over
    assert state.stop_peaks == {}

    state.apply(msgspec.structs.replace(peak, ts_logged_ns=8))
    flip = msgspec.structs.replace(fill("f4", 3, "11.00"), side=Side.SELL)
    state.apply(statelog.FillApplied(ts_logged_ns=9, fill=flip))  # long 0 -> short 3
    assert state.stop_peaks == {}


def test_snapshot_when_stop_peaks_then_round_trip_and_old_snapshots_read_without(
    tmp_path: Path,
) -> None:
    state = statelog.replay(RECORDS, D(0))
    state.apply(statelog.StopPeakMoved(ts_logged_ns=5, symbol="AAPL", long=True, price=D(11)))
    snapshot = state.snapshot(6)
    restored = statelog.LoggedState.from_snapshot(
        msgspec.json.decode(msgspec.json.encode(snapshot), type=records.Snapshot)
    )
    assert restored.stop_peaks == state.stop_peaks and restored.snapshot(6) == snapshot

    older = msgspec.json.encode(msgspec.structs.replace(snapshot, stop_peaks=[]))
    without = older.replace(b',"stop_peaks":[]', b"")
    assert b"stop_peaks" not in without
    decoded = msgspec.json.decode(without, type=records.Snapshot)
    assert statelog.LoggedState.from_snapshot(decoded).stop_peaks == {}
