"""The execution engine without a broker: an order is logged, acknowledged and sent once; a
duplicate is dropped, also after a restart; halted or stale orders are refused; shutdown cancels
what is still working and publishes the cancels."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import ExecutionConfig, TradingSystemSpec
from components.core.events import (
    BreakerState,
    Fill,
    FillBooked,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Payload,
    RiskState,
    Side,
)
from components.execution import orderlog, service, venues
from components.execution.service import ExecutionEngine
from components.execution.venues.base import Report
from components.execution.venues.faults import FaultyVenue
from components.execution.venues.simulated import SimulatedExchange
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal


Start = Callable[[TradingSystemSpec], ExecutionEngine]


@pytest.fixture
async def start(endpoints: BrokerEndpoints, tmp_path: Path) -> AsyncIterator[Start]:
    """Engines on `tmp_path`, restored, with a recording publisher and an AAPL quote."""
    started: list[ExecutionEngine] = []

    def restored(spec: TradingSystemSpec) -> ExecutionEngine:
        engine = make(spec, endpoints, tmp_path)
        started.append(engine)
        return engine

    yield restored
    for engine in started:
        await engine.close()


def make(spec: TradingSystemSpec, endpoints: BrokerEndpoints, tmp_path: Path) -> ExecutionEngine:
    settings = make_settings("execution", endpoints, tmp_path)
    engine = ExecutionEngine(spec, settings, prom.CollectorRegistry())
    engine.restore()
    engine._publisher = RecordingPublisher()  # type: ignore[assignment]
    engine.venue.on_quote(quote("99.98", "100.02"))
    return engine


def sent(engine: ExecutionEngine) -> list[tuple[str, Payload, str | None]]:
    return engine._publisher.sent  # type: ignore[union-attr]


async def deliver(engine: ExecutionEngine, order: Order) -> None:
    envelope = wire.Envelope(topics.APPROVED_ORDERS, "risk", 1, 1, 1, "trace-9", order)
    await engine.on_order(order, envelope)
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())


def order(client_order_id: str = "c1", limit_price: str | None = None) -> Order:
    now = time.time_ns()
    return Order(
        client_order_id=client_order_id,
        signal_id="s1",
        symbol="AAPL",
        side=Side.BUY,
        quantity=D(10),
        ts_event_ns=now,
        ts_origin_ns=now - 2_000_000,
        order_type=OrderType.MARKET if limit_price is None else OrderType.LIMIT,
        limit_price=None if limit_price is None else D(limit_price),
    )


@pytest.fixture
def spec() -> TradingSystemSpec:
    return TradingSystemSpec(symbols=["AAPL", "MSFT"])


async def test_on_order_when_new_then_logged_acknowledged_sent_and_reported(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    await deliver(engine, order())
    kinds = [
        (topic, p.status if isinstance(p, OrderUpdate) else "fill", trace)
        for topic, p, trace in sent(engine)
    ]
    assert kinds == [
        (topics.ORDER_UPDATES, OrderStatus.PENDING_NEW, "trace-9"),
        (topics.ORDER_UPDATES, OrderStatus.NEW, "trace-9"),
        (topics.FILLS, "fill", "trace-9"),
        (topics.ORDER_UPDATES, OrderStatus.FILLED, "trace-9"),
    ]
    registry = engine.registry
    assert registry.get_sample_value("execution_fills_total") == 1
    assert (
        registry.get_sample_value(
            "execution_orders_total", {"status": "filled", "venue": "simulated"}
        )
        == 1
    )
    assert registry.get_sample_value("execution_tick_to_order_seconds_count") == 1
    records = orderlog.read(tmp_path / "execution" / orderlog.ORDER_LOG_NAME).records
    assert isinstance(records[0], orderlog.OrderReceived)
    assert engine.orders.open == {}


async def test_on_order_when_same_id_again_then_dropped_and_counted(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    await deliver(engine, order())
    await deliver(engine, order())
    assert sum(isinstance(p, Fill) for _, p, _ in sent(engine)) == 1
    assert engine.registry.get_sample_value("execution_duplicate_orders_total") == 1


async def test_on_order_when_id_sent_before_restart_then_not_sent_again(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    await deliver(engine, order())
    await engine.close()
    again = start(spec)
    await deliver(again, order())
    assert sent(again) == []
    assert again.registry.get_sample_value("execution_duplicate_orders_total") == 1


async def test_on_order_when_halted_then_refused_and_never_sent(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec.model_copy(update={"halted": True}))
    await deliver(engine, order())
    [(_, update, _)] = sent(engine)
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.reason) == (OrderStatus.REJECTED, "HALTED: by=spec.halted")


async def test_on_order_when_older_than_approval_timeout_then_refused_as_expired(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    await deliver(engine, msgspec.structs.replace(order(), ts_event_ns=1))
    [(_, update, _)] = sent(engine)
    assert isinstance(update, OrderUpdate) and update.reason.startswith("APPROVAL_EXPIRED: ")


async def test_close_when_orders_resting_then_canceled_and_published(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    await deliver(engine, order(limit_price="90"))
    assert list(engine.orders.open) == ["c1"]
    await engine.close()
    last = sent(engine)[-1][1]
    assert isinstance(last, OrderUpdate) and last.status is OrderStatus.CANCELED
    log, orders = orderlog.OrderLog.restore(tmp_path / "execution" / orderlog.ORDER_LOG_NAME)
    log.close()
    assert orders.open == {}


def _fills_sent(engine: ExecutionEngine) -> list[str]:
    return [p.fill_id for topic, p, _ in sent(engine) if topic == topics.FILLS]  # type: ignore[union-attr]


async def test_fill_when_not_confirmed_then_sent_again_until_booked(
    spec: TradingSystemSpec, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = start(spec)
    await deliver(engine, order())
    [fill_id] = _fills_sent(engine)
    assert set(engine.orders.unconfirmed) == {fill_id}

    clock = [time.monotonic() + 5]  # later than RESEND_AFTER_S after the first send
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    await one_resend_pass(engine, monkeypatch)
    assert _fills_sent(engine) == [fill_id, fill_id]

    engine.on_fill_booked(FillBooked(fill_id=fill_id, client_order_id="c1", ts_event_ns=1))
    clock[0] += 5
    await one_resend_pass(engine, monkeypatch)
    assert _fills_sent(engine) == [fill_id, fill_id]  # confirmed: not sent a third time
    assert engine.orders.unconfirmed == {}


async def test_restart_when_fill_unconfirmed_then_only_that_fill_is_sent_again(
    spec: TradingSystemSpec, start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = start(spec)
    await deliver(engine, order("c1"))
    await deliver(engine, order("c2"))
    first, second = _fills_sent(engine)
    engine.on_fill_booked(FillBooked(fill_id=first, client_order_id="c1", ts_event_ns=1))
    await engine.close()

    restarted = start(spec)
    assert set(restarted.orders.unconfirmed) == {second}
    await one_resend_pass(restarted, monkeypatch)
    assert _fills_sent(restarted) == [second]


class _Stop(Exception):
    """Ends the timer loop after one pass."""


async def one_resend_pass(engine: ExecutionEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the re-send timer once: its first sleep returns at once, its second stops it."""
    sleeps = iter([None])

    async def sleep(_: float) -> None:
        if next(sleeps, _Stop) is _Stop:
            raise _Stop

    monkeypatch.setattr(service.asyncio, "sleep", sleep)
    with pytest.raises(_Stop):
        await engine._resend_unconfirmed_fills()


async def test_on_order_when_quote_known_then_estimate_logged_and_realized_slippage_exported(
    spec: TradingSystemSpec, start: Start, tmp_path: Path
) -> None:
    engine = start(spec)
    engine.slippage.on_quote(quote("99.98", "100.02"))
    await deliver(engine, order())
    received = orderlog.read(tmp_path / "execution" / orderlog.ORDER_LOG_NAME).records[0]
    assert isinstance(received, orderlog.OrderReceived)
    assert received.arrival_mid == D(100) and received.expected_slippage_bps == pytest.approx(2.0)
    labels = {"symbol": "AAPL"}
    registry = engine.registry
    # Bought at 100.02 against a mid of 100.00: 2 bps (a histogram with negative buckets
    # exports no sum, so the buckets say where it fell).
    realized = "execution_realized_slippage_bps_bucket"
    assert registry.get_sample_value(realized, {**labels, "le": "0.0"}) == 0
    assert registry.get_sample_value(realized, {**labels, "le": "2.0"}) == 1
    assert registry.get_sample_value("execution_expected_slippage_bps_count", labels) == 1


async def test_on_order_when_breaker_open_then_refused_with_the_reason(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec)
    state = RiskState(
        breaker=BreakerState.OPEN,
        halted_reason="drawdown",
        cash=D(0),
        equity=D(0),
        realized_pnl=D(0),
        positions=[],
        ts_event_ns=1,
    )
    engine.on_risk_state(state)
    await deliver(engine, order())
    [(_, update, _)] = sent(engine)
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.reason) == (OrderStatus.REJECTED, "BREAKER_OPEN: reason=drawdown")
    engine.on_risk_state(msgspec.structs.replace(state, breaker=BreakerState.CLOSED))
    await deliver(engine, order("c2"))
    assert sent(engine)[-1][1].status is OrderStatus.FILLED  # type: ignore[union-attr]


async def test_on_order_when_client_id_too_long_then_rejected_before_the_venue(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec)
    await deliver(engine, order("x" * 49))
    [(_, update, _)] = sent(engine)
    assert update.reason == "INVALID_CLIENT_ORDER_ID: length=49, max=48"  # type: ignore[union-attr]
    assert engine.venue.matching.orders == {}  # type: ignore[attr-defined]


async def test_reconcile_when_open_orders_unknown_to_a_restarted_venue_then_closed_as_absent(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec)
    await deliver(engine, order(limit_price="90"))  # rests
    engine._log.close()  # type: ignore[union-attr]  # killed: nothing canceled
    engine._log = None
    restarted = start(spec)  # a new simulated exchange: it never saw c1
    await restarted.reconcile()
    [(_, update, _)] = sent(restarted)
    assert isinstance(update, OrderUpdate)
    assert (update.status, update.reason) == (OrderStatus.CANCELED, "NOT_AT_VENUE: venue=simulated")
    assert restarted.orders.open == {} and restarted.reconciled
    assert (
        restarted.registry.get_sample_value(
            "execution_reconciliations_total", {"outcome": "absent"}
        )
        == 1
    )


async def test_on_report_when_fill_has_no_price_then_skipped_counted_and_engine_goes_on(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec)
    await deliver(engine, order(limit_price="90"))  # rests
    bad = Report(
        client_order_id="c1",
        venue_order_id="v",
        symbol="AAPL",
        side=Side.BUY,
        status=OrderStatus.PARTIALLY_FILLED,
        quantity=D(10),
        filled_quantity=D(4),
        avg_fill_price=None,
        ts_event_ns=1,
    )
    engine.on_report(bad)
    assert engine.registry.get_sample_value("execution_invalid_reports_total") == 1
    assert engine.orders.states["c1"].filled == 0 and _fills_sent(engine) == []
    engine.on_report(msgspec.structs.replace(bad, avg_fill_price=D("89.99")))
    assert engine.orders.states["c1"].filled == D(4)


def test_build_when_simulated_faults_configured_then_venue_wrapped_in_them() -> None:
    plain = venues.build(ExecutionConfig())
    faulty = venues.build(
        ExecutionConfig.model_validate({"simulated": {"faults": {"seed": 3, "server_error": 0.2}}})
    )
    assert isinstance(plain, SimulatedExchange)
    assert isinstance(faulty, FaultyVenue) and faulty.faults.server_error == 0.2


async def test_close_when_a_submit_was_cut_short_then_closed_as_not_at_venue_without_waiting(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec.model_copy(update={"execution": ExecutionConfig(cancel_timeout_s=30)}))
    record = orderlog.OrderReceived(ts_logged_ns=1, order=order("cut"), trace_id="t")
    assert engine._log is not None
    engine._log.append(record)  # logged, then the submit task was cancelled by the shutdown
    engine.orders.apply(record)
    started = time.monotonic()
    await engine.close()
    assert time.monotonic() - started < 5
    last = sent(engine)[-1][1]
    assert isinstance(last, OrderUpdate)
    assert (last.status, last.reason) == (OrderStatus.CANCELED, "NOT_AT_VENUE: venue=simulated")


async def test_on_order_when_venue_cannot_even_be_asked_then_unresolved_until_it_answers(
    spec: TradingSystemSpec, start: Start
) -> None:
    engine = start(spec)
    venue = engine.venue
    real_get = venue.get_order
    down = True

    async def submit(order: Order) -> Report:
        raise service.VenueError("connection refused")

    async def get_order(client_order_id: str) -> Report | None:
        if down:
            raise service.VenueError("connection refused")
        return await real_get(client_order_id)

    venue.submit = submit  # type: ignore[method-assign]
    venue.get_order = get_order  # type: ignore[method-assign]
    await deliver(engine, order())
    assert engine._unresolved == {"c1"}
    assert engine.orders.states["c1"].status is OrderStatus.PENDING_NEW  # fate unknown: kept
    down = False
    await engine._reconcile_one("c1")  # what the unresolved loop does every few seconds
    assert engine._unresolved == set()
    last = sent(engine)[-1][1]
    assert (last.status, last.reason) == (OrderStatus.CANCELED, "NOT_AT_VENUE: venue=simulated")  # type: ignore[union-attr]


def risk_state(breaker: BreakerState) -> RiskState:
    return RiskState(
        breaker=breaker,
        halted_reason="drawdown" if breaker is BreakerState.OPEN else "",
        cash=D(0),
        equity=D(0),
        realized_pnl=D(0),
        positions=[],
        ts_event_ns=1,
    )


async def consume(engine: ExecutionEngine, *payloads: Payload) -> None:
    """What the subscriber would deliver, through the engine's consumer, then its work done."""

    async def envelopes() -> AsyncIterator[wire.Envelope]:
        for n, payload in enumerate(payloads):
            yield wire.Envelope(topics.APPROVED_ORDERS, "risk", n, 1, 1, "trace-9", payload)

    await engine._consume(envelopes())  # type: ignore[arg-type]
    while engine._tasks:
        await asyncio.gather(*engine._tasks)


@pytest.mark.parametrize(
    ("first_word", "outcome"),
    [
        (BreakerState.OPEN, (OrderStatus.REJECTED, "BREAKER_OPEN: reason=drawdown")),
        (BreakerState.CLOSED, (OrderStatus.FILLED, "")),
        (None, (OrderStatus.REJECTED, "RISK_STATE_UNKNOWN: no risk.state within 0.05 s")),
    ],
)
async def test_start_when_breaker_not_yet_known_then_orders_wait_for_the_risk_manager(
    spec: TradingSystemSpec,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    first_word: BreakerState | None,
    outcome: tuple[OrderStatus, str],
) -> None:
    monkeypatch.setattr(service, "HOLD_FOR_RISK_STATE_S", 0.05)
    engine = start(spec)
    engine._risk_heard = asyncio.Event()  # as run() sets it
    waiting = asyncio.create_task(engine._expect_risk_state())
    await consume(engine, order())
    assert sent(engine) == [] and len(engine._held) == 1  # idle: not even acknowledged
    if first_word is not None:
        await consume(engine, risk_state(first_word))
    await waiting
    while engine._tasks:
        await asyncio.gather(*engine._tasks)
    while not engine.venue.reports.empty():
        engine.on_report(engine.venue.reports.get_nowait())
    last = sent(engine)[-1][1]
    assert isinstance(last, OrderUpdate) and (last.status, last.reason) == outcome


def _updates_sent(
    engine: ExecutionEngine, skip: int = 0
) -> list[tuple[str, OrderStatus, str | None]]:
    return [
        (p.client_order_id, p.status, trace)
        for topic, p, trace in sent(engine)[skip:]
        if topic == topics.ORDER_UPDATES and isinstance(p, OrderUpdate)
    ]


def held(*client_order_ids: str) -> RiskState:
    return RiskState(
        breaker=BreakerState.CLOSED,
        halted_reason="",
        cash=D(0),
        equity=D(0),
        realized_pnl=D(0),
        positions=[],
        ts_event_ns=1,
        open_order_ids=list(client_order_ids),
    )


async def test_risk_state_when_risk_holds_finished_orders_then_their_final_update_sent_again(
    spec: TradingSystemSpec,
    start: Start,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(service.time, "monotonic", lambda: clock[0])
    engine = start(spec)
    await deliver(engine, order("done"))  # filled at once
    await deliver(engine, order("resting", limit_price="90"))
    before = len(sent(engine))

    # Just finished: the risk manager may not have seen the update yet when it sent its state.
    engine.on_risk_state(held("done", "resting", "never-received"))
    assert len(sent(engine)) == before

    clock[0] += service.RESEND_AFTER_S
    caplog.clear()
    with caplog.at_level("INFO", logger="components.execution"):
        engine.on_risk_state(held("done", "resting", "never-received"))
    # Only the finished order; one still working or never received (the risk manager expires
    # that approval itself) is left alone.
    assert _updates_sent(engine, skip=before) == [("done", OrderStatus.FILLED, "trace-9")]
    final = sent(engine)[-1][1]
    assert isinstance(final, OrderUpdate) and final.filled_quantity == D(10)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        (
            "INFO",
            "Risk manager still holds order done, which is filled here; "
            "sending its final update again.",
        )
    ]
    resent = "execution_final_updates_resent_total"
    assert engine.registry.get_sample_value(resent) == 1

    engine.on_risk_state(held("done"))  # the copy may still be on its way: not again yet
    assert engine.registry.get_sample_value(resent) == 1
    clock[0] += service.RESEND_AFTER_S
    engine.on_risk_state(held("done"))  # lost again (risk restarting): sent again
    assert engine.registry.get_sample_value(resent) == 2
    clock[0] += service.RESEND_AFTER_S
    engine.on_risk_state(held())  # released: nothing more
    assert engine.registry.get_sample_value(resent) == 2
    assert engine.orders.states["done"].status is OrderStatus.FILLED  # nothing changed here

    await engine.close()  # cancels "resting"
    restarted = start(spec)
    # After a restart nothing is known of earlier sends: due at once, from the order log.
    restarted.on_risk_state(held("done", "resting"))
    assert _updates_sent(restarted) == [
        ("done", OrderStatus.FILLED, "trace-9"),
        ("resting", OrderStatus.CANCELED, "trace-9"),
    ]
