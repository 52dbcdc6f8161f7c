"""Restart from the state log: snapshots and rotation keep it bounded, a damaged snapshot falls
back to the one before, a gap in the records is refused, and, for random event sequences, a
crash at any record boundary, in the middle of a record, or while a snapshot is written, restores
exactly the state held in memory after the last record that reached the disk, trailing-stop peaks
included: a restarted stop trails from the logged peak, which is logged by steps, not per quote."""

from __future__ import annotations

import tempfile
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from components.core.config import TradingSystemSpec
from components.core.errors import CorruptLineError, CorruptLogError, FillRejected
from components.core.events import Fill, OrderStatus, OrderUpdate, Side, Signal
from components.risk import breaker, lifecycle, records, statelog
from components.risk.engine import RiskEngine
from components.runtime import journal
from tests.factories import quote

D = Decimal
S = 1_000_000_000
T0 = 1_710_165_600 * S  # 2024-03-11 14:00 UTC, a session of New York
SPEC = TradingSystemSpec.model_validate(
    {
        "symbols": ["AAPL"],
        "risk": {
            "limits": {"max_position": 1000, "max_order_quantity": 1000, "max_open_orders": 50},
            "breaker": {"max_move_pct": 50, "max_drawdown_pct": 50},
            "stops": {"trailing_stop_pct": 5},
        },
    }
)
Files = dict[str, bytes]


def files_of(directory: Path) -> Files:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir())}


def restore(files: Files) -> statelog.Restored:
    """Write `files` to a fresh directory and restore from it as a restarted process would."""
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        for file, data in files.items():
            (directory / file).write_bytes(data)
        store, restored = statelog.StateStore.open(
            directory, SPEC.risk.initial_cash, snapshot_every=5
        )
        store.close()
        return restored


class CapturingStore(statelog.StateStore):
    """Before each append: the files on disk, the state in memory and the line to be written."""

    engine: RiskEngine

    def __init__(self, directory: Path, snapshot_every: int) -> None:
        super().__init__(directory, snapshot_every)
        self.checkpoints: list[tuple[Files, records.Snapshot, bytes]] = []

    def append(self, record: records.Record) -> None:
        line = journal.encode(record)
        self.checkpoints.append((files_of(self.directory), self.engine.state.snapshot(0), line))
        super().append(record)


def start_engine(directory: Path, snapshot_every: int = 5) -> tuple[RiskEngine, CapturingStore]:
    store = CapturingStore(directory, snapshot_every)
    store._active, _ = statelog.StateLog.open(directory / statelog.STATE_LOG_NAME)
    engine = RiskEngine(SPEC, store=store)
    store.engine = engine
    engine.start("test", T0)
    return engine, store


def buy(engine: RiskEngine, now: int, quantity: int, side: Side = Side.BUY) -> str | None:
    signal = Signal(
        signal_id=f"s{now}",
        strategy="test",
        symbol="AAPL",
        side=side,
        quantity=D(quantity),
        ts_event_ns=now,
        ts_origin_ns=now,
    )
    decision = engine.check(signal, now + S, now)
    return decision.order.client_order_id if isinstance(decision, lifecycle.Approved) else None


def fill(engine: RiskEngine, client_order_id: str, quantity: Decimal, price: str, now: int) -> None:
    order = engine.state.approvals[client_order_id].order
    engine.on_fill(
        Fill(
            fill_id=f"f{now}",
            client_order_id=client_order_id,
            symbol="AAPL",
            side=order.side,
            quantity=quantity,
            price=D(price),
            fee=D("0.01"),
            venue="test",
            ts_event_ns=now,
        ),
        now,
    )


# --- snapshots and rotation ------------------------------------------------------------------


def run_some(engine: RiskEngine, count: int) -> None:
    engine.on_quote(quote("99.99", "100.01"), T0)
    for i in range(count):
        now = T0 + (i + 1) * S
        client_order_id = buy(engine, now, 1 + i % 3, Side.BUY if i % 2 else Side.SELL)
        assert client_order_id is not None
        fill(engine, client_order_id, D(1 + i % 3), "100", now)


def test_snapshots_when_many_records_then_two_kept_and_older_segments_dropped(
    tmp_path: Path,
) -> None:
    engine, store = start_engine(tmp_path, snapshot_every=10)
    run_some(engine, 20)  # 2 records each, 42 in all
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [
        "snapshot-000000000030.snap",
        "snapshot-000000000040.snap",
        "state-000000000040.log",
        "state.log",
    ]
    store.close()
    restored = statelog.load(tmp_path, D(1))
    assert restored.snapshot_seq == 40 and restored.records_replayed == 2
    assert restored.state.snapshot(0) == engine.state.snapshot(0)


def test_restore_when_newest_snapshot_damaged_then_older_one_and_the_segments_after_it(
    tmp_path: Path,
) -> None:
    engine, store = start_engine(tmp_path, snapshot_every=10)
    run_some(engine, 20)
    store.close()
    newest = tmp_path / "snapshot-000000000040.snap"
    newest.write_bytes(newest.read_bytes().replace(b'"cash"', b'"kash"'))
    restored = statelog.load(tmp_path, D(1))
    assert restored.bad_snapshots == [newest.name]
    assert restored.snapshot_seq == 30 and restored.records_replayed == 12
    assert restored.state.snapshot(0) == engine.state.snapshot(0)


def test_restore_when_a_segment_is_missing_then_corrupt_log_error_names_the_gap(
    tmp_path: Path,
) -> None:
    engine, store = start_engine(tmp_path, snapshot_every=10)
    run_some(engine, 20)
    store.close()
    (tmp_path / "snapshot-000000000040.snap").unlink()
    (tmp_path / "state-000000000040.log").unlink()
    with pytest.raises(CorruptLogError, match="record 41 follows record 30: records lost"):
        statelog.load(tmp_path, D(1))


def test_restore_when_log_predates_sequences_then_records_numbered_in_order(
    tmp_path: Path,
) -> None:
    log, _ = statelog.StateLog.open(tmp_path / statelog.STATE_LOG_NAME)
    log.append(records.LogOpened(ts_logged_ns=1, system="old", initial_cash=D(50)))
    log.append(records.SessionStarted(ts_logged_ns=2, session="2024-03-11", start_equity=D(50)))
    log.close()
    restored = statelog.load(tmp_path, D(1))
    assert (restored.state.seq, restored.state.book.cash) == (2, D(50))


# --- trailing-stop peaks ---------------------------------------------------------------------


def restart(directory: Path) -> tuple[RiskEngine, statelog.StateStore]:
    store, restored = statelog.StateStore.open(directory, SPEC.risk.initial_cash, 5)
    return RiskEngine(SPEC, store=store, state=restored.state), store


def test_trailing_stop_when_restarted_then_trails_from_the_logged_peak(tmp_path: Path) -> None:
    engine, store = start_engine(tmp_path)
    engine.on_quote(quote("99.99", "100.01"), T0)
    client_order_id = buy(engine, T0 + S, 10)
    assert client_order_id is not None
    fill(engine, client_order_id, D(10), "100", T0 + S)
    engine.on_quote(quote("109.99", "110.01"), T0 + 2 * S)  # record 5: in the snapshot
    engine.on_quote(quote("110.99", "111.01"), T0 + 3 * S)  # record 6: replayed after it
    store.close()
    assert sorted(p.name for p in tmp_path.glob("*.snap")) == ["snapshot-000000000005.snap"]

    restarted, store = restart(tmp_path)
    assert restarted.stops.best == {"AAPL": D("110.99")}
    # 5 % below 110.99 is 105.4405: 105.45 holds, 105.44 exits (from the entry it would not).
    assert restarted.on_quote(quote("105.45", "105.47"), T0 + 4 * S) == []
    [exit_order] = restarted.on_quote(quote("105.44", "105.46"), T0 + 5 * S)
    assert exit_order.signal.reason.startswith("TRAILING_STOP: symbol=AAPL, best=110.99")
    store.close()


def test_stop_peak_when_price_climbs_every_quote_then_logged_by_steps_not_per_quote(
    tmp_path: Path,
) -> None:
    engine, store = start_engine(tmp_path, snapshot_every=1000)
    engine.on_quote(quote("99.99", "100.01"), T0)
    client_order_id = buy(engine, T0 + S, 10)
    assert client_order_id is not None
    fill(engine, client_order_id, D(10), "100", T0 + S)
    before = engine.state.seq
    now = T0 + 2 * S
    for cents in range(1, 201):  # 100.01 to 102.00, a cent a millisecond
        bid = D(100) + D(cents) / 100
        now += 1_000_000
        engine.on_quote(quote(str(bid), str(bid + D("0.02"))), now)
    # The first move off the entry, then one per tenth of the 5 % trailing distance (~0.50).
    logged = [line for _, _, line in store.checkpoints[before:] if b'"stop_peak"' in line]
    assert len(logged) == engine.state.seq - before == 4
    assert engine.state.stop_peaks["AAPL"].price == D("101.54")
    assert engine.stops.best["AAPL"] == D("102.00")
    # A second later even a quote that betters nothing logs the peak the stop trails from.
    engine.on_quote(quote("101.90", "101.92"), now + S)
    assert engine.state.stop_peaks["AAPL"].price == D("102.00")
    store.close()


# --- crashes ---------------------------------------------------------------------------------

events = st.lists(
    st.one_of(
        st.tuples(st.just("order"), st.integers(1, 20), st.sampled_from([Side.BUY, Side.SELL])),
        st.tuples(st.just("fill"), st.integers(0, 5), st.integers(1, 3)),
        st.tuples(st.just("update"), st.integers(0, 5), st.sampled_from(list(OrderStatus))),
        st.tuples(st.just("quote"), st.integers(90, 110), st.just(0)),
        st.tuples(st.just("wait"), st.integers(1, 90_000), st.just(0)),
        st.tuples(st.just("trip"), st.just(0), st.just(0)),
        st.tuples(st.just("reset"), st.just(0), st.just(0)),
    ),
    min_size=1,
    max_size=25,
)


def drive(engine: RiskEngine, script: list[tuple[str, object, object]]) -> None:
    now = T0
    engine.on_quote(quote("99.99", "100.01"), now)
    for kind, a, b in script:
        now += S
        open_ids = list(engine.state.approvals)
        if kind == "order":
            buy(engine, now, int(a), b)  # type: ignore[arg-type]
        elif kind == "fill" and open_ids:
            approval = engine.state.approvals[open_ids[int(a) % len(open_ids)]]
            quantity = min(approval.remaining, D(int(b)))  # type: ignore[call-overload]
            fill(engine, approval.order.client_order_id, quantity, "100.05", now)
        elif kind == "update" and open_ids:
            engine.on_order_update(
                OrderUpdate(
                    client_order_id=open_ids[int(a) % len(open_ids)],
                    venue_order_id=None,
                    symbol="AAPL",
                    status=b,  # type: ignore[arg-type]
                    filled_quantity=D(0),
                    avg_fill_price=None,
                    ts_event_ns=now,
                ),
                now,
            )
        elif kind == "quote":
            price = D(int(a))
            engine.on_quote(quote(str(price - D("0.01")), str(price + D("0.01"))), now)
        elif kind == "wait":
            now += int(a) * S  # up to a day: expiries, breaker recovery, new sessions
            engine.tick(now)
        elif kind == "trip":
            engine.trip(breaker.Trigger.MANUAL, "test", now)
        elif kind == "reset":
            engine.reset("test", now)
        assert_incremental_totals_exact(engine)


def assert_incremental_totals_exact(engine: RiskEngine) -> None:
    """The exposure book kept event by event equals the same figures summed afresh."""
    book = engine.state.book
    assert engine.equity() == book.equity()
    fresh: dict[str, list[Decimal]] = {}
    for approval in engine.state.approvals.values():
        sides = fresh.setdefault(approval.order.symbol, [book.quantity("AAPL"), D(0), D(0)])
        sides[1 if approval.order.side is Side.BUY else 2] += approval.remaining
    if "AAPL" not in fresh and book.quantity("AAPL"):
        fresh["AAPL"] = [book.quantity("AAPL"), D(0), D(0)]
    assert {
        s: [e.position, e.pending_buy, e.pending_sell] for s, e in engine.exposures().items()
    } == fresh


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events)
# A position whose peak is logged, moved, kept through an added fill and dropped when it closes.
@example(
    [
        ("order", 5, Side.BUY),
        ("fill", 0, 3),
        ("quote", 104, 0),
        ("quote", 106, 0),
        ("fill", 0, 2),
        ("quote", 107, 0),
        ("order", 5, Side.SELL),
        ("fill", 0, 3),
        ("fill", 0, 2),
        ("quote", 103, 0),
    ]
)
def test_crash_when_cut_anywhere_then_restart_restores_the_last_logged_state(
    script: list[tuple[str, object, object]],
) -> None:
    with tempfile.TemporaryDirectory() as name:
        directory = Path(name)
        engine, store = start_engine(directory)
        drive(engine, script)
        store.close()
        final = (files_of(directory), engine.state.snapshot(0), b"")
    for files, expected, next_line in [*store.checkpoints, final]:
        # At a record boundary (the next record not yet written).
        assert restore(files).state.snapshot(0) == expected
        if not next_line:
            continue
        active = files.get(statelog.STATE_LOG_NAME, b"")
        # In the middle of the next record, up to its last byte but the newline.
        for torn in (next_line[:1], next_line[: len(next_line) // 2], next_line[:-1]):
            restored = restore({**files, statelog.STATE_LOG_NAME: active + torn})
            assert restored.torn_lines == 1
            assert restored.state.snapshot(0) == expected
        # Written whole, newline and all, but damaged: it may have been acted on, so refused.
        damaged = next_line[:-5] + bytes([next_line[-5] ^ 0x20]) + next_line[-4:]
        with pytest.raises(CorruptLineError):
            restore({**files, statelog.STATE_LOG_NAME: active + damaged})
        # In the middle of writing a snapshot: the temporary file is left over.
        leftover = {**files, "snapshot-000000999999.tmp": b"0badc0de {"}
        assert restore(leftover).state.snapshot(0) == expected


# --- fills the book cannot take --------------------------------------------------------------


def big_fill(fill_id: str, side: Side, quantity: str, price: str) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id="c-big",
        symbol="AAPL",
        side=side,
        quantity=D(quantity),
        price=D(price),
        fee=D(0),
        venue="test",
        ts_event_ns=T0,
    )


def test_on_fill_when_the_book_refuses_it_then_nothing_logged_and_nothing_changed(
    tmp_path: Path,
) -> None:
    engine, store = start_engine(tmp_path)
    engine.on_fill(big_fill("f-ok", Side.BUY, "10", "100"), T0)
    before = (files_of(tmp_path), engine.state.seq, engine.state.book.cash)
    with pytest.raises(FillRejected, match="fill f-huge: quantity 1E\\+16 is above the maximum"):
        engine.on_fill(big_fill("f-huge", Side.SELL, "1e16", "100"), T0 + S)
    assert (files_of(tmp_path), engine.state.seq, engine.state.book.cash) == before
    assert "f-huge" not in engine.state.fill_ids
    assert engine.metrics.invalid_fills._value.get() == 1
    store.close()


def test_restart_when_a_huge_partial_close_was_booked_then_the_same_book(tmp_path: Path) -> None:
    """Buy 3e9 @ 1e9, sell 1e9 @ 1e9: once half-applied and logged, so no restart replayed it."""
    engine, store = start_engine(tmp_path)
    engine.on_fill(big_fill("f1", Side.BUY, "3e9", "1e9"), T0)
    engine.on_fill(big_fill("f2", Side.SELL, "1e9", "1e9"), T0 + S)
    store.close()
    again, store = restart(tmp_path)
    assert again.state.book.holdings == engine.state.book.holdings
    assert again.state.book.cash == engine.state.book.cash == SPEC.risk.initial_cash - D("2e18")
    store.close()


def test_restore_when_the_log_holds_a_fill_the_book_refuses_then_names_file_line_and_fill(
    tmp_path: Path,
) -> None:
    log, _ = statelog.StateLog.open(tmp_path / statelog.STATE_LOG_NAME)
    log.append(records.LogOpened(ts_logged_ns=T0, system="test", initial_cash=D(1000), seq=1))
    bad = big_fill("f-bad", Side.BUY, "1e-13", "1")  # logged by a version that took it
    log.append(records.FillApplied(ts_logged_ns=T0, fill=bad, seq=2))
    log.close()
    problem = r"state\.log, line 2: record 2 cannot be applied: fill f-bad: quantity 1E-13"
    with pytest.raises(CorruptLogError, match=problem):
        statelog.StateStore.open(tmp_path, D(1000), snapshot_every=5)
