"""The risk manager: the only path by which a signal becomes an order.

It serves `CheckSignal` requests (through the broker), approves or rejects them with the
`engine` (limits, breaker), and publishes each approved `Order` for execution. It follows order
updates and fills to keep positions, cash and pending exposure (each fill id booked once,
confirmed with `FillBooked` once on disk), expires approvals that execution never acknowledged,
and publishes `RiskState` on `risk.state` on every breaker change and every second.

Everything that changes its state goes through the state log first (`statelog`): written and
fsynced, then applied. Restart replays the latest snapshot and the log after it to the same state.

The breaker can be tripped and reset by hand over HTTP, authenticated with the bearer token in
`TS_RISK_ADMIN_TOKEN` (no token set: the admin endpoints answer 503):

    POST /breaker/trip   {"reason": "..."}     POST /breaker/reset
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from typing import Any

from aiohttp import web

from components.core import topics, wire
from components.core.errors import RequestError
from components.core.events import (
    CheckSignal,
    Fill,
    FillBooked,
    OrderUpdate,
    Quote,
    RiskState,
    SignalChecked,
    Trade,
)
from components.risk import breaker, kube_status, lifecycle, limits, records, statelog
from components.risk.engine import RiskEngine
from components.risk.metrics import RiskMetrics
from components.runtime import server
from components.runtime.bus import Publisher, Subscriber
from components.runtime.component import Component

log = logging.getLogger(__name__)

STATE_INTERVAL_S = 1.0  # how often `RiskState` is published
TICK_S = 0.1  # granularity of approval expiry and breaker recovery
ADMIN_TOKEN_ENV = "TS_RISK_ADMIN_TOKEN"
MAX_REASON_CHARS = 200


class RiskManager(Component):
    name = "risk"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = RiskMetrics(self.registry)
        self.engine = RiskEngine(self.spec, metrics=self.metrics, on_breaker=self._on_breaker)
        self._store: statelog.StateStore | None = None
        self._publisher: Publisher | None = None
        self._admin_token = os.environ.get(ADMIN_TOKEN_ENV, "")
        # On Kubernetes only (TS_KUBE_NAMESPACE): the breaker reported to the operator.
        self._kube = kube_status.from_environment(
            self.settings.system_name,
            self.registry,
            heartbeat_s=self.spec.breaker_stale_after_s / 3,
        )

    @property
    def state(self) -> statelog.LoggedState:
        return self.engine.state

    @property
    def quotes(self) -> dict[str, Quote]:
        return self.engine.quotes

    # --- state ----------------------------------------------------------------------------

    def restore(self) -> None:
        """Open the state log under the data directory: latest snapshot + replay of the rest."""
        directory = self.settings.data_dir
        risk = self.spec.risk
        self._store, restored = statelog.StateStore.open(
            directory, risk.initial_cash, risk.snapshot_every
        )
        self.metrics.torn_lines.inc(restored.torn_lines)
        self.metrics.bad_snapshots.inc(len(restored.bad_snapshots))
        now = time.time_ns()
        # Order ids are `<system>-<start ms, base 36>-<n>`: unique across restarts, even if the
        # clock stepped back, since the start is after every record already logged.
        start_ms = max(now // 1_000_000, restored.state.last_logged_ns // 1_000_000 + 1)
        self.engine = RiskEngine(
            self.spec,
            metrics=self.metrics,
            store=self._store,
            state=restored.state,
            id_prefix=f"{self.settings.system_name[:20]}-{_base36(start_ms)}",
            on_breaker=self._on_breaker,
        )
        self.engine.start(self.settings.system_name, now)
        book = self.state.book
        log.info(
            "Risk manager restored %d position(s), cash %s, %d open approval(s) and breaker %s "
            "from snapshot %d + %d record(s) of %s%s.",
            sum(1 for h in book.holdings.values() if h.quantity),
            book.cash,
            len(self.state.approvals),
            self.state.breaker.state,
            restored.snapshot_seq,
            restored.records_replayed,
            directory,
            f"; cut off {restored.torn_lines} torn line(s)" if restored.torn_lines else "",
        )
        self._update_gauges()

    def exposures(self) -> dict[str, limits.Exposure]:
        return self.engine.exposures()

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        if self._store is None:
            self.restore()
        self._publisher = self.bus.publisher()
        subscriber = self.bus.subscriber(
            [topics.ORDER_UPDATES, topics.FILLS, topics.QUOTES, topics.TRADES]
        )
        responder = self.bus.responder()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(responder.serve(topics.RISK_CHECK, self.on_check_signal))
            tasks.create_task(self._consume(subscriber))
            tasks.create_task(self._keep_time())
            if self._kube is not None:
                tasks.create_task(self._kube.run())

    async def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    async def _consume(self, subscriber: Subscriber) -> None:
        async for envelope in subscriber:
            payload = envelope.payload
            if isinstance(payload, Quote):
                self.on_quote(payload, trace_id=envelope.trace_id)
            elif isinstance(payload, Trade):
                self.engine.on_trade(payload)
            elif isinstance(payload, Fill):
                self.on_fill(payload)
            elif isinstance(payload, OrderUpdate):
                self.on_order_update(payload)

    async def _keep_time(self) -> None:
        next_state_ns = 0
        while True:
            now = time.time_ns()
            self.engine.tick(now)
            if now >= next_state_ns:
                self.publish_state(now)
                next_state_ns = now + int(STATE_INTERVAL_S * 1e9)
            await asyncio.sleep(TICK_S)

    # --- risk checks ----------------------------------------------------------------------

    async def on_check_signal(self, envelope: wire.Envelope) -> SignalChecked:
        request = envelope.payload
        if not isinstance(request, CheckSignal):
            rejection = limits.Rejection.of(
                limits.RejectReason.INVALID_REQUEST, payload=type(request).__name__
            )
            self.engine.count_rejection(rejection, symbol="")
            log.info("Rejected a request: %s.", rejection.message)
            return SignalChecked(signal_id="", approved=False, reason=rejection.message)
        signal = request.signal
        decision = self.engine.check(signal, request.deadline_ns, time.time_ns())
        match decision:
            case lifecycle.Approved():
                self.send(decision, envelope.trace_id)
                return SignalChecked(
                    signal_id=signal.signal_id,
                    approved=True,
                    client_order_id=decision.order.client_order_id,
                )
            case lifecycle.AlreadyApproved(client_order_id=client_order_id):
                return SignalChecked(
                    signal_id=signal.signal_id, approved=True, client_order_id=client_order_id
                )
            case lifecycle.Rejected(rejection=rejection):
                return SignalChecked(
                    signal_id=signal.signal_id, approved=False, reason=rejection.message
                )
        raise AssertionError(f"unknown decision {decision!r}")

    def send(self, approved: lifecycle.Approved, trace_id: str | None) -> None:
        """Publish an approved order for execution: the only way an order leaves."""
        assert self._publisher is not None
        order = approved.order
        self._publisher.publish(
            topics.APPROVED_ORDERS, order, ts_event_ns=order.ts_event_ns, trace_id=trace_id
        )

    def on_quote(self, quote: Quote, trace_id: str | None = None) -> None:
        for exit_order in self.engine.on_quote(quote, time.time_ns()):
            self.send(exit_order, trace_id)

    # --- what execution reports -----------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        try:
            self.engine.on_fill(fill, time.time_ns())
        except ValueError:
            return  # malformed: counted and logged by the engine, never confirmed
        except OSError as exc:
            log.error(
                "Could not log fill %s, not booked (execution sends it again): %s.",
                fill.fill_id,
                exc,
            )
            return
        self._confirm(fill)  # booked now or before: the first confirmation may have been lost
        self._update_gauges()

    def _confirm(self, fill: Fill) -> None:
        """Tell execution the fill is booked (only once it is on disk), so it stops re-sending."""
        if self._publisher is not None:
            now = time.time_ns()
            booked = FillBooked(
                fill_id=fill.fill_id, client_order_id=fill.client_order_id, ts_event_ns=now
            )
            self._publisher.publish(topics.FILLS_BOOKED, booked, ts_event_ns=now)

    def on_order_update(self, update: OrderUpdate) -> None:
        try:
            self.engine.on_order_update(update, time.time_ns())
        except OSError as exc:
            log.error("Could not log the update of order %s: %s.", update.client_order_id, exc)

    def expire_approvals(self, now_ns: int) -> None:
        self.engine.expire_approvals(now_ns)

    # --- the breaker ----------------------------------------------------------------------

    def _on_breaker(self, change: records.BreakerChanged) -> None:
        self.publish_state(change.ts_logged_ns)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/breaker/trip", self._trip), web.post("/breaker/reset", self._reset)]

    def _authorized(self, request: web.Request) -> web.Response | None:
        """None when the request carries the admin token; else the response refusing it."""
        if not self._admin_token:
            return web.json_response(
                {"error": f"admin endpoints are disabled: {ADMIN_TOKEN_ENV} is not set"},
                status=503,
            )
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            token.strip().encode(), self._admin_token.encode()
        ):
            log.warning("Refused an unauthenticated %s %s.", request.method, request.path)
            return web.json_response(
                {"error": "a valid bearer token is required"},
                status=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None

    async def _trip(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        body = await server.json_object(request)  # bad: 400 from the server, nothing tripped
        reason = body.get("reason", "")
        if not isinstance(reason, str):
            raise RequestError(f"reason: must be a string (was {type(reason).__name__})")
        reason = reason[:MAX_REASON_CHARS]
        self.engine.trip(breaker.Trigger.MANUAL, reason or "tripped by an admin", time.time_ns())
        return web.json_response(self.breaker_status())

    async def _reset(self, request: web.Request) -> web.Response:
        refused = self._authorized(request)
        if refused is not None:
            return refused
        await server.json_object(request)  # none expected; a garbled one: 400, nothing reset
        try:
            self.engine.reset("admin", time.time_ns())
        except OSError as exc:
            return web.json_response({"error": f"could not log the reset: {exc}"}, status=500)
        return web.json_response(self.breaker_status())

    # --- what it shows --------------------------------------------------------------------

    def risk_state(self, now_ns: int) -> RiskState:
        book, state = self.state.book, self.state
        breaker_state = state.breaker
        return RiskState(
            breaker=breaker_state.state,
            halted_reason="spec.halted" if self.spec.halted else "",
            cash=book.cash,
            equity=book.equity(),
            realized_pnl=book.realized_pnl,
            positions=book.snapshot(now_ns),
            ts_event_ns=now_ns,
            breaker_reason=self.engine.unlogged_trip or breaker_state.reason,
            breaker_since_ns=breaker_state.since_ns,
            daily_pnl=self.engine.daily_pnl(),
            unrealized_pnl=book.unrealized_pnl(),
            fees=book.fees,
            open_orders=len(state.approvals),
            last_sequence=state.seq,
            open_order_ids=list(state.approvals),
        )

    def publish_state(self, now_ns: int) -> None:
        self._update_gauges()
        state = self.risk_state(now_ns)
        if self._publisher is not None:
            self._publisher.publish(topics.RISK_STATE, state, ts_event_ns=now_ns)
        if self._kube is not None:
            self._kube.report(state, self.breaker_status())

    def _update_gauges(self) -> None:
        book = self.state.book
        for symbol, holding in book.holdings.items():
            self.metrics.position.labels(symbol).set(float(holding.quantity))
        self.metrics.cash.set(float(book.cash))
        self.metrics.equity.set(float(book.equity()))
        self.metrics.realized_pnl.set(float(book.realized_pnl))
        self.metrics.daily_pnl.set(float(self.engine.daily_pnl()))
        self.metrics.pending.set(len(self.state.approvals))
        self.metrics.show_breaker(self.state.breaker.state)

    def readiness(self) -> dict[str, bool]:
        return {**super().readiness(), "statelog": self._store is not None}

    def breaker_status(self) -> dict[str, Any]:
        b = self.state.breaker
        return {
            "state": str(b.state),
            "reason": self.engine.unlogged_trip or b.reason,
            "trigger": b.trigger,
            "since_ns": b.since_ns,
            "history": [
                {
                    "state": str(h.state),
                    "trigger": h.trigger,
                    "reason": h.reason,
                    "ts_ns": h.ts_logged_ns,
                    "seq": h.seq,
                }
                for h in b.history
            ],
        }

    def status(self) -> dict[str, Any]:
        book = self.state.book
        return {
            **super().status(),
            "breaker": self.breaker_status(),
            "cash": str(book.cash),
            "equity": str(book.equity()),
            "realized_pnl": str(book.realized_pnl),
            "unrealized_pnl": str(book.unrealized_pnl()),
            "fees": str(book.fees),
            "session": self.state.session,
            "daily_pnl": str(self.engine.daily_pnl()),
            "last_sequence": self.state.seq,
            "positions": [
                {
                    "symbol": p.symbol,
                    "quantity": str(p.quantity),
                    "avg_price": str(p.avg_price),
                    "realized_pnl": str(p.realized_pnl),
                    "unrealized_pnl": str(book.unrealized_pnl(p.symbol)),
                }
                for p in book.snapshot()
            ],
            "pending_approvals": [
                {
                    "client_order_id": a.order.client_order_id,
                    "symbol": a.order.symbol,
                    "side": str(a.order.side),
                    "remaining": str(a.remaining),
                    "acknowledged": a.acknowledged,
                }
                for a in self.state.approvals.values()
            ],
        }


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
