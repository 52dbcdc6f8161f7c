"""The risk manager's decisions without a broker: each rejection reason, approvals that are logged
before they are published, fills, acknowledgements, expiry of unacknowledged approvals, order ids,
and a restart that replays the state log to the same state."""

from __future__ import annotations

import errno
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client as prom
import pytest

from components.core import topics, wire
from components.core.config import ExecutionConfig, TradingSystemSpec
from components.core.events import (
    BreakerState,
    CheckSignal,
    Fill,
    FillBooked,
    Heartbeat,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Payload,
    PositionDrifted,
    RiskState,
    Side,
    Signal,
)
from components.risk import breaker, statelog
from components.risk.service import RiskManager
from components.runtime import journal, server
from components.runtime.settings import BrokerEndpoints
from tests.conftest import RecordingPublisher, make_settings
from tests.factories import quote

D = Decimal


def make_spec(**risk: Any) -> TradingSystemSpec:
    limits = {"max_position": D(100), "max_notional": D(50_000)}
    return TradingSystemSpec.model_validate(
        {
            "symbols": ["AAPL", "MSFT"],
            "risk": {"limits": limits, "initial_cash": D(100_000), **risk},
        }
    )


Start = Callable[[TradingSystemSpec], RiskManager]


@pytest.fixture
async def start(endpoints: BrokerEndpoints, tmp_path: Path) -> AsyncIterator[Start]:
    """Risk managers on `tmp_path`, restored, with a recording publisher; closed at the end."""
    started: list[RiskManager] = []

    def restored(spec: TradingSystemSpec) -> RiskManager:
        risk = make(spec, endpoints, tmp_path)
        started.append(risk)
        return risk

    yield restored
    for risk in started:
        await risk.close()


def make(spec: TradingSystemSpec, endpoints: BrokerEndpoints, tmp_path: Path) -> RiskManager:
    risk = RiskManager(spec, make_settings("risk", endpoints, tmp_path), prom.CollectorRegistry())
    risk.restore()
    risk._publisher = RecordingPublisher()  # type: ignore[assignment]
    risk.quotes["AAPL"] = quote("99.90", "100.10")
    return risk


def published(risk: RiskManager) -> list[tuple[str, Payload, str | None]]:
    return risk._publisher.sent  # type: ignore[union-attr]


def request(
    quantity: int = 10,
    *,
    symbol: str = "AAPL",
    side: Side = Side.BUY,
    signal_id: str = "s1",
    deadline_ns: int | None = None,
    **extra: Any,
) -> wire.Envelope:
    now = time.time_ns()
    signal = Signal(
        signal_id=signal_id,
        strategy="test",
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        ts_event_ns=now,
        ts_origin_ns=now - 1000,
        **extra,
    )
    check = CheckSignal(signal=signal, deadline_ns=deadline_ns or now + 10**9)
    return wire.Envelope(topics.RISK_CHECK, "strategy", 1, now, now, "trace-1", check)


def fill_for(order: Order, fill_id: str = "f1", quantity: int | None = None) -> Fill:
    return Fill(
        fill_id=fill_id,
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        quantity=order.quantity if quantity is None else D(quantity),
        price=D("100.10"),
        fee=D("0.01"),
        venue="test",
        ts_event_ns=1,
    )


def update_for(order: Order, status: OrderStatus) -> OrderUpdate:
    return OrderUpdate(
        client_order_id=order.client_order_id,
        venue_order_id=None,
        symbol=order.symbol,
        status=status,
        filled_quantity=D(0),
        avg_fill_price=None,
        ts_event_ns=1,
    )


@pytest.fixture
def risk(start: Start) -> RiskManager:
    return start(make_spec())


async def test_check_when_within_limits_then_logs_publishes_order_and_approves(
    risk: RiskManager, tmp_path: Path
) -> None:
    reply = await risk.on_check_signal(request())
    assert reply.approved and reply.reason == ""
    [(topic, order, trace_id)] = published(risk)
    assert (topic, trace_id) == (topics.APPROVED_ORDERS, "trace-1")
    assert isinstance(order, Order) and order.client_order_id == reply.client_order_id
    assert (order.symbol, order.side, order.quantity) == ("AAPL", Side.BUY, D(10))
    records = list(statelog.read(tmp_path / "risk" / statelog.STATE_LOG_NAME))
    assert records[-1] == statelog.OrderApproved(
        ts_logged_ns=records[-1].ts_logged_ns, order=order, seq=len(records)
    )
    assert risk.exposures()["AAPL"].pending_buy == D(10)
    assert risk.registry.get_sample_value("risk_checks_total", {"outcome": "approved"}) == 1


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: request(deadline_ns=time.time_ns() - 5_000_000), "REQUEST_EXPIRED: signal_id=s1"),
        (lambda: request(symbol="IBM"), "UNKNOWN_SYMBOL: symbol=IBM"),
        (lambda: request(symbol="MSFT"), "NO_PRICE: symbol=MSFT"),
        (lambda: request(0), "INVALID_SIGNAL: symbol=AAPL, problem=quantity must be > 0 (was 0)"),
        (
            lambda: request(order_type=OrderType.LIMIT),
            "INVALID_SIGNAL: symbol=AAPL, problem=a limit order needs a limit price",
        ),
        (lambda: request(101), "POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=101, limit=100"),
    ],
)
async def test_check_when_signal_fails_a_rule_then_rejects_with_reason_and_no_order(
    risk: RiskManager, build: Any, expected: str
) -> None:
    reply = await risk.on_check_signal(build())
    assert not reply.approved and reply.client_order_id is None
    assert reply.reason.startswith(expected)
    assert published(risk) == []
    code = expected.split(":")[0]
    assert risk.registry.get_sample_value("risk_checks_total", {"outcome": "rejected"}) == 1
    symbol = "unknown" if code == "UNKNOWN_SYMBOL" else build().payload.signal.symbol
    assert (
        risk.registry.get_sample_value("risk_rejections_total", {"reason": code, "symbol": symbol})
        == 1
    )


async def test_check_when_halted_then_rejects_halted(start: Start) -> None:
    risk = start(make_spec().model_copy(update={"halted": True}))
    reply = await risk.on_check_signal(request())
    assert reply.reason == "HALTED: symbol=AAPL, by=spec.halted"


async def test_check_when_request_is_not_check_signal_then_rejects_invalid_request(
    risk: RiskManager,
) -> None:
    envelope = wire.Envelope(topics.RISK_CHECK, "x", 1, 1, 1, "t", Heartbeat(ts_event_ns=1))
    reply = await risk.on_check_signal(envelope)
    assert reply.reason == "INVALID_REQUEST: payload=Heartbeat"


async def test_check_when_pending_approvals_then_they_count_against_the_limit(
    risk: RiskManager,
) -> None:
    assert (await risk.on_check_signal(request(60, signal_id="a"))).approved
    reply = await risk.on_check_signal(request(60, signal_id="b"))
    assert reply.reason.startswith("POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=120")


async def test_check_when_same_signal_again_then_same_order_id_and_no_second_order(
    risk: RiskManager,
) -> None:
    first = await risk.on_check_signal(request())
    again = await risk.on_check_signal(request())
    assert again.approved and again.client_order_id == first.client_order_id
    assert len(published(risk)) == 1


async def test_on_fill_when_new_then_logged_applied_and_pending_reduced(
    risk: RiskManager,
) -> None:
    await risk.on_check_signal(request())
    order = published(risk)[0][1]
    assert isinstance(order, Order)
    risk.on_fill(fill_for(order, quantity=4))
    assert risk.state.book.quantity("AAPL") == D(4)
    assert risk.exposures()["AAPL"].pending_buy == D(6)
    risk.on_fill(fill_for(order, quantity=4))  # the same fill id again
    assert risk.state.book.quantity("AAPL") == D(4)
    assert risk.registry.get_sample_value("risk_duplicate_fills_total") == 1
    risk.on_fill(fill_for(order, "f2", quantity=6))
    assert risk.state.approvals == {}


async def test_on_fill_when_booked_or_seen_again_then_confirmed_each_time(
    risk: RiskManager,
) -> None:
    """Execution re-sends a fill until confirmed, and a confirmation can be lost: re-confirm."""
    await risk.on_check_signal(request())
    order = published(risk)[0][1]
    assert isinstance(order, Order)
    risk.on_fill(fill_for(order, quantity=4))
    risk.on_fill(fill_for(order, quantity=4))
    confirmations = [p for topic, p, _ in published(risk) if topic == topics.FILLS_BOOKED]
    assert confirmations == [
        FillBooked(fill_id="f1", client_order_id=order.client_order_id, ts_event_ns=c.ts_event_ns)
        for c in confirmations
    ]
    assert len(confirmations) == 2


async def test_on_order_update_when_rejected_by_venue_then_pending_released(
    risk: RiskManager,
) -> None:
    await risk.on_check_signal(request())
    order = published(risk)[0][1]
    assert isinstance(order, Order)
    risk.on_order_update(update_for(order, OrderStatus.PENDING_NEW))
    assert risk.state.approvals[order.client_order_id].acknowledged
    risk.on_order_update(update_for(order, OrderStatus.REJECTED))
    assert risk.state.approvals == {}
    assert "AAPL" not in risk.exposures()  # nothing filled, nothing pending


async def test_expire_approvals_when_unacknowledged_past_timeout_then_released(
    start: Start,
) -> None:
    risk = start(make_spec(approval_timeout_ms=100))
    await risk.on_check_signal(request(signal_id="a"))
    await risk.on_check_signal(request(signal_id="b"))
    acked = published(risk)[1][1]
    assert isinstance(acked, Order)
    risk.on_order_update(update_for(acked, OrderStatus.NEW))
    now = time.time_ns()
    risk.expire_approvals(now + 50_000_000)
    assert len(risk.state.approvals) == 2
    risk.expire_approvals(now + 200_000_000)
    assert list(risk.state.approvals) == [acked.client_order_id]
    assert risk.registry.get_sample_value("risk_approvals_expired_total") == 1


async def test_restore_when_restarted_on_same_data_dir_then_same_state_and_new_ids(
    risk: RiskManager, start: Start
) -> None:
    await risk.on_check_signal(request(signal_id="a"))
    await risk.on_check_signal(request(5, side=Side.SELL, signal_id="b"))
    orders = [payload for _, payload, _ in published(risk)]
    assert all(isinstance(o, Order) for o in orders)
    risk.on_fill(fill_for(orders[0]))  # type: ignore[arg-type]
    await risk.close()

    again = start(make_spec())
    assert again.state.book.snapshot(1) == risk.state.book.snapshot(1)
    assert again.state.book.cash == risk.state.book.cash
    assert list(again.state.approvals) == [orders[1].client_order_id]  # type: ignore[union-attr]
    reply = await again.on_check_signal(request(signal_id="c"))
    assert reply.client_order_id not in {o.client_order_id for o in orders}  # type: ignore[union-attr]
    assert reply.client_order_id is not None and len(reply.client_order_id) <= 48


def test_status_when_positions_then_shows_positions_cash_equity_and_pending(
    risk: RiskManager,
) -> None:
    status = risk.status()
    assert status["cash"] == "100000" and status["positions"] == []
    assert status["pending_approvals"] == []
    assert risk.readiness()["statelog"] is True


async def test_check_when_state_log_cannot_be_written_then_rejects_and_publishes_nothing(
    risk: RiskManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "risk" / statelog.STATE_LOG_NAME
    size = path.stat().st_size

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(journal.os, "fsync", disk_full)
    reply = await risk.on_check_signal(request())
    assert reply.reason == "STATE_LOG_FAILED: error=No space left on device"
    assert published(risk) == [] and risk.state.approvals == {}
    assert path.stat().st_size == size  # the half-written record was cut back


# --- the breaker over HTTP and on the bus ------------------------------------------------------


@pytest.fixture
async def admin(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RiskManager, str]]:
    """A risk manager with an admin token, its HTTP endpoints served on 127.0.0.1."""
    monkeypatch.setenv("TS_RISK_ADMIN_TOKEN", "s3cret-token")
    risk = start(make_spec())
    app = server.build_app(risk.registry, risk.readiness, risk.status, risk.routes())
    runner = await server.start(app, "127.0.0.1", 0)  # port 0: no race for a free port
    yield risk, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()


async def post(url: str, token: str | None, body: dict[str, str] | None = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, json=body or {}, headers=headers) as response,
    ):
        return response.status, await response.json()


async def test_breaker_trip_when_token_valid_then_open_published_and_at_status(
    admin: tuple[RiskManager, str], caplog: pytest.LogCaptureFixture
) -> None:
    risk, base = admin
    await risk.on_check_signal(request(signal_id="before"))
    code, body = await post(f"{base}/breaker/trip", "s3cret-token", {"reason": "news at 10"})
    assert (code, body["state"], body["reason"]) == (200, "open", "news at 10")
    [state] = [p for topic, p, _ in published(risk) if topic == topics.RISK_STATE]
    assert isinstance(state, RiskState)
    assert (state.breaker, state.breaker_reason) == (BreakerState.OPEN, "news at 10")
    assert state.breaker_since_ns == body["since_ns"] and state.open_order_ids != []
    assert risk.status()["breaker"] == body
    reply = await risk.on_check_signal(request(signal_id="after"))
    assert reply.reason.startswith("BREAKER_OPEN: symbol=AAPL, why=news at 10")
    assert risk.registry.get_sample_value("risk_breaker_open") == 1
    assert "s3cret-token" not in caplog.text


@pytest.mark.parametrize("token", [None, "wrong", "s3cret-tokenX", "s3cret-toke"])
async def test_breaker_endpoints_when_token_missing_or_wrong_then_401_and_unchanged(
    admin: tuple[RiskManager, str], token: str | None
) -> None:
    risk, base = admin
    for path in ("/breaker/trip", "/breaker/reset"):
        code, body = await post(f"{base}{path}", token)
        assert (code, body) == (401, {"error": "a valid bearer token is required"})
    assert risk.state.breaker.state is BreakerState.CLOSED


async def test_breaker_reset_when_tripped_then_closed_and_history_kept(
    admin: tuple[RiskManager, str],
) -> None:
    risk, base = admin
    await post(f"{base}/breaker/trip", "s3cret-token")
    code, body = await post(f"{base}/breaker/reset", "s3cret-token")
    assert (code, body["state"]) == (200, "closed")
    assert [h["trigger"] for h in body["history"]] == ["manual", "manual_reset"]
    assert (await risk.on_check_signal(request())).approved


async def test_breaker_endpoints_when_no_token_configured_then_503(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TS_RISK_ADMIN_TOKEN", raising=False)
    risk = start(make_spec())
    app = server.build_app(risk.registry, risk.readiness, risk.status, risk.routes())
    runner = await server.start(app, "127.0.0.1", 0)
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/breaker/reset"
        code, body = await post(url, "anything")
    finally:
        await runner.cleanup()
    assert code == 503 and "TS_RISK_ADMIN_TOKEN is not set" in body["error"]


async def test_restore_when_breaker_was_open_then_still_open_with_its_history(
    risk: RiskManager, start: Start
) -> None:
    risk.engine.trip(breaker.Trigger.MANUAL, "before the restart", time.time_ns())
    await risk.close()
    again = start(make_spec())
    assert again.status()["breaker"] == risk.status()["breaker"]
    assert again.registry.get_sample_value("risk_breaker_state") == 2


async def test_expire_approvals_when_state_log_fails_then_kept_and_expired_next_tick(
    start: Start, monkeypatch: pytest.MonkeyPatch
) -> None:
    risk = start(make_spec(approval_timeout_ms=100))
    await risk.on_check_signal(request())
    later = time.time_ns() + 200_000_000

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(journal.os, "fsync", disk_full)
        risk.expire_approvals(later)  # no exception out of the loop that ticks
    assert len(risk.state.approvals) == 1  # still counted
    assert risk.registry.get_sample_value("risk_statelog_failures_total") == 1
    risk.expire_approvals(later)
    assert risk.state.approvals == {}


async def test_on_order_update_when_final_update_repeated_then_closed_once_and_rest_ignored(
    risk: RiskManager, caplog: pytest.LogCaptureFixture
) -> None:
    # Execution re-sends an order's final update while `risk.state` still lists the order: the
    # copy may cross the first one, or come after a restart of either side.
    await risk.on_check_signal(request())
    order = published(risk)[0][1]
    assert isinstance(order, Order)
    risk.on_order_update(update_for(order, OrderStatus.CANCELED))
    closed_at = risk.state.seq
    assert risk.state.approvals == {}
    caplog.clear()
    with caplog.at_level("INFO", logger="components.risk"):
        risk.on_order_update(update_for(order, OrderStatus.CANCELED))
        risk.on_order_update(update_for(order, OrderStatus.FILLED))
    assert risk.state.seq == closed_at  # nothing more logged, nothing applied
    assert caplog.records == []  # quietly
    assert "AAPL" not in risk.exposures()


def drifted(ours: str = "0", venue_position: str = "10") -> PositionDrifted:
    return PositionDrifted(
        symbol="AAPL",
        ours=D(ours),
        venue_position=D(venue_position),
        venue="simulated",
        ts_event_ns=1,
    )


async def test_on_position_drifted_when_policy_halt_then_breaker_open_until_manual_reset(
    start: Start,
) -> None:
    risk = start(make_spec(breaker={"recovery_wait_s": 1}))
    risk.on_position_drifted(drifted())
    status = risk.breaker_status()
    assert (status["state"], status["trigger"], status["reason"]) == (
        "open",
        "venue_drift",
        "VENUE_DRIFT: symbol=AAPL, ours=0, simulated=10",
    )
    assert any(
        topic == topics.RISK_STATE and p.breaker is BreakerState.OPEN  # type: ignore[union-attr]
        for topic, p, _ in published(risk)
    )
    risk.engine.tick(time.time_ns() + 3600 * 10**9)  # long past the recovery wait
    assert risk.breaker_status()["state"] == "open"  # the books must be put right first
    risk.on_position_drifted(drifted())  # the next pass says it again: no new record
    assert len(risk.breaker_status()["history"]) == 1
    risk.engine.reset("admin", time.time_ns())
    assert risk.breaker_status()["state"] == "closed"


async def test_on_position_drifted_when_policy_alert_then_breaker_left_closed(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    spec = make_spec().model_copy(update={"execution": ExecutionConfig(drift_policy="alert")})
    risk = make(spec, endpoints, tmp_path)
    risk.on_position_drifted(drifted())
    assert risk.breaker_status()["state"] == "closed"
    await risk.close()
