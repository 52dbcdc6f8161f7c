"""The risk manager: the only path by which a signal becomes an order.

It serves `CheckSignal` requests (through the broker), approves or rejects them against the
limits, and publishes each approved `Order` for execution. It follows order updates and fills to
keep positions, cash and pending exposure, and expires approvals that execution never
acknowledged, so that a stopped execution engine leaves no phantom exposure behind.

Everything that changes its state goes through the state log first (`statelog`): written and
fsynced, then applied. Restart replays the log to the same state.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from decimal import Decimal
from typing import Any

import prometheus_client as prom

from components.core import topics, wire
from components.core.events import (
    BreakerState,
    CheckSignal,
    Fill,
    FillBooked,
    Order,
    OrderStatus,
    OrderType,
    OrderUpdate,
    Quote,
    RiskState,
    Side,
    Signal,
    SignalChecked,
)
from components.risk import limits, positions, statelog
from components.runtime.bus import Publisher, Subscriber
from components.runtime.component import Component

log = logging.getLogger(__name__)

STATE_INTERVAL_S = 1.0  # how often `RiskState` is published
TICK_S = 0.1  # granularity of approval expiry
TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
APPROVAL_EXPIRED = "APPROVAL_EXPIRED"


class RiskMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.checks = prom.Counter(
            "risk_checks", "Signals checked, by outcome.", ["outcome"], registry=registry
        )
        self.rejections = prom.Counter(
            "risk_rejections",
            "Signals rejected, by reason and symbol.",
            ["reason", "symbol"],
            registry=registry,
        )
        self.expired = prom.Counter(
            "risk_approvals_expired",
            "Approvals that execution did not acknowledge in time.",
            registry=registry,
        )
        self.fills = prom.Counter("risk_fills_applied", "Fills applied.", registry=registry)
        self.duplicate_fills = prom.Counter(
            "risk_duplicate_fills", "Fills seen again and ignored.", registry=registry
        )
        self.invalid_fills = prom.Counter(
            "risk_invalid_fills", "Fills refused as malformed.", registry=registry
        )
        self.torn_lines = prom.Counter(
            "risk_statelog_torn_lines",
            "Torn last lines of the state log skipped on restart.",
            registry=registry,
        )
        # Gauges are float: fine for display, never used for decisions.
        self.position = prom.Gauge(
            "risk_position", "Position in shares.", ["symbol"], registry=registry
        )
        self.equity = prom.Gauge("risk_equity", "Cash plus positions at mid.", registry=registry)
        self.cash = prom.Gauge("risk_cash", "Cash.", registry=registry)
        self.realized_pnl = prom.Gauge(
            "risk_realized_pnl", "Realized P&L, net of fees.", registry=registry
        )
        self.pending = prom.Gauge(
            "risk_pending_approvals", "Approved orders not yet filled or closed.", registry=registry
        )


class RiskManager(Component):
    name = "risk"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = RiskMetrics(self.registry)
        self.state = statelog.LoggedState(self.spec.risk.initial_cash)
        self.quotes: dict[str, Quote] = {}
        risk_limits = self.spec.risk.limits
        self.limits: list[limits.Limit] = [
            limits.MaxPosition(risk_limits.max_position),
            limits.MaxNotional(risk_limits.max_notional),
        ]
        self._symbols = frozenset(self.spec.symbols)
        self._log: statelog.StateLog | None = None
        self._publisher: Publisher | None = None
        self._id_prefix = ""
        self._ids = itertools.count(1)

    # --- state ----------------------------------------------------------------------------

    def restore(self) -> None:
        """Open the state log under the data directory and replay it."""
        path = self.settings.data_dir / statelog.STATE_LOG_NAME
        self._log, replay = statelog.StateLog.open(path)
        self.metrics.torn_lines.inc(replay.torn_lines)
        self.state = statelog.replay(replay, self.spec.risk.initial_cash)
        if not self.state.opened:
            self._record(
                statelog.LogOpened(
                    ts_logged_ns=time.time_ns(),
                    system=self.settings.system_name,
                    initial_cash=self.spec.risk.initial_cash,
                )
            )
        # Order ids are `<system>-<start ms, base 36>-<n>`: unique across restarts, even if the
        # clock stepped back, since the start is after every record already logged.
        last_ms = max((r.ts_logged_ns // 1_000_000 for r in replay), default=0)
        start_ms = max(time.time_ns() // 1_000_000, last_ms + 1)
        self._id_prefix = f"{self.settings.system_name[:20]}-{_base36(start_ms)}"
        self._ids = itertools.count(1)
        book = self.state.book
        log.info(
            "Risk manager restored %d position(s), cash %s and %d open approval(s) "
            "from %d record(s) of %s.",
            sum(1 for h in book.holdings.values() if h.quantity),
            book.cash,
            len(self.state.approvals),
            len(replay.records),
            path,
        )
        self._update_gauges()

    def _record(self, record: statelog.Record) -> None:
        """Log (fsynced), then apply: the one way the state changes."""
        assert self._log is not None, "restore() opens the state log"
        self._log.append(record)
        self.state.apply(record)

    def exposures(self) -> dict[str, limits.Exposure]:
        pending: dict[str, list[Decimal]] = {}
        for approval in self.state.approvals.values():
            sides = pending.setdefault(approval.order.symbol, [Decimal(0), Decimal(0)])
            sides[0 if approval.order.side is Side.BUY else 1] += approval.remaining
        symbols = pending.keys() | self.state.book.holdings.keys()
        return {
            symbol: limits.Exposure(
                self.state.book.quantity(symbol), *pending.get(symbol, (Decimal(0), Decimal(0)))
            )
            for symbol in symbols
        }

    # --- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        if self._log is None:
            self.restore()
        self._publisher = self.bus.publisher()
        subscriber = self.bus.subscriber([topics.ORDER_UPDATES, topics.FILLS, topics.QUOTES])
        responder = self.bus.responder()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(responder.serve(topics.RISK_CHECK, self.on_check_signal))
            tasks.create_task(self._consume(subscriber))
            tasks.create_task(self._keep_time())

    async def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _consume(self, subscriber: Subscriber) -> None:
        async for envelope in subscriber:
            payload = envelope.payload
            if isinstance(payload, Quote):
                self.quotes[payload.symbol] = payload
                self.state.book.mark(payload.symbol, payload.mid)
            elif isinstance(payload, Fill):
                self.on_fill(payload)
            elif isinstance(payload, OrderUpdate):
                self.on_order_update(payload)

    async def _keep_time(self) -> None:
        next_state_ns = 0
        while True:
            now = time.time_ns()
            self.expire_approvals(now)
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
            self._count_rejection(rejection, symbol="")
            return SignalChecked(signal_id="", approved=False, reason=rejection.message)
        signal = request.signal
        known = self.state.signals.get(signal.signal_id)
        if known is not None:
            # A retry of a signal already approved: same answer, no second order.
            log.info("Signal %s was already approved as order %s.", signal.signal_id, known)
            return SignalChecked(signal_id=signal.signal_id, approved=True, client_order_id=known)
        now = time.time_ns()
        rejection = self.check(signal, request.deadline_ns, now)
        if rejection is not None:
            return self._reject(signal, rejection)
        order = self._order_for(signal, now)
        try:
            self._record(statelog.OrderApproved(ts_logged_ns=now, order=order))
        except OSError as exc:
            log.error("Could not log the approval of signal %s: %s.", signal.signal_id, exc)
            reason = limits.RejectReason.STATE_LOG_FAILED
            return self._reject(signal, limits.Rejection.of(reason, error=exc.strerror))
        assert self._publisher is not None
        self._publisher.publish(
            topics.APPROVED_ORDERS, order, ts_event_ns=now, trace_id=envelope.trace_id
        )
        self.metrics.checks.labels("approved").inc()
        self.metrics.pending.set(len(self.state.approvals))
        log.info(
            "Approved signal %s as order %s (%s %s %s).",
            signal.signal_id,
            order.client_order_id,
            order.side,
            order.quantity,
            order.symbol,
        )
        return SignalChecked(
            signal_id=signal.signal_id, approved=True, client_order_id=order.client_order_id
        )

    def check(self, signal: Signal, deadline_ns: int, now_ns: int) -> limits.Rejection | None:
        """The first reason to reject `signal` at `now_ns`, or None to approve it."""
        reason = limits.RejectReason
        if now_ns > deadline_ns:
            late_ms = (now_ns - deadline_ns) / 1e6
            return limits.Rejection.of(
                reason.REQUEST_EXPIRED, signal_id=signal.signal_id, late_ms=f"{late_ms:.1f}"
            )
        if signal.symbol not in self._symbols:
            return limits.Rejection.of(reason.UNKNOWN_SYMBOL, symbol=signal.symbol)
        if self.spec.halted:
            return limits.Rejection.of(reason.HALTED, symbol=signal.symbol, by="spec.halted")
        problem = _invalid(signal)
        if problem:
            return limits.Rejection.of(reason.INVALID_SIGNAL, symbol=signal.symbol, problem=problem)
        if limits.order_price(self.quotes.get(signal.symbol), signal.side) is None:
            return limits.Rejection.of(reason.NO_PRICE, symbol=signal.symbol)
        exposures = self.exposures()
        for limit in self.limits:
            rejection = limit.check(signal, exposures, self.quotes)
            if rejection is not None:
                return rejection
        return None

    def _order_for(self, signal: Signal, now_ns: int) -> Order:
        return Order(
            client_order_id=f"{self._id_prefix}-{next(self._ids)}",
            signal_id=signal.signal_id,
            symbol=signal.symbol,
            side=signal.side,
            quantity=signal.quantity,
            ts_event_ns=now_ns,
            ts_origin_ns=signal.ts_origin_ns,
            order_type=signal.order_type,
            limit_price=signal.limit_price,
        )

    def _reject(self, signal: Signal, rejection: limits.Rejection) -> SignalChecked:
        self._count_rejection(rejection, signal.symbol)
        log.info("Rejected signal %s: %s.", signal.signal_id, rejection.message)
        return SignalChecked(signal_id=signal.signal_id, approved=False, reason=rejection.message)

    def _count_rejection(self, rejection: limits.Rejection, symbol: str) -> None:
        self.metrics.checks.labels("rejected").inc()
        # Only configured symbols become label values: a label per unknown symbol is unbounded.
        label = symbol if symbol in self._symbols else "unknown"
        self.metrics.rejections.labels(rejection.reason.value, label).inc()

    # --- what execution reports -----------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        if fill.fill_id in self.state.fill_ids:
            self.metrics.duplicate_fills.inc()
            log.info("Fill %s was already applied; ignored, confirmed again.", fill.fill_id)
            self._confirm(fill)  # the first confirmation may have been lost
            return
        try:
            positions.validate_fill(fill)
        except ValueError as exc:
            self.metrics.invalid_fills.inc()
            log.error("Refused a malformed fill: %s.", exc)
            return
        self._record(statelog.FillApplied(ts_logged_ns=time.time_ns(), fill=fill))
        self._confirm(fill)
        self.metrics.fills.inc()
        self._update_gauges()
        log.info(
            "Applied fill %s of order %s: %s %s %s at %s; position %s.",
            fill.fill_id,
            fill.client_order_id,
            fill.side,
            fill.quantity,
            fill.symbol,
            fill.price,
            self.state.book.quantity(fill.symbol),
        )

    def _confirm(self, fill: Fill) -> None:
        """Tell execution the fill is booked (only once it is on disk), so it stops re-sending."""
        if self._publisher is not None:
            now = time.time_ns()
            booked = FillBooked(
                fill_id=fill.fill_id, client_order_id=fill.client_order_id, ts_event_ns=now
            )
            self._publisher.publish(topics.FILLS_BOOKED, booked, ts_event_ns=now)

    def on_order_update(self, update: OrderUpdate) -> None:
        approval = self.state.approvals.get(update.client_order_id)
        if approval is None:
            return  # closed already, or not ours
        now = time.time_ns()
        if update.status in TERMINAL:
            self._record(
                statelog.OrderClosed(
                    ts_logged_ns=now,
                    client_order_id=update.client_order_id,
                    status=update.status,
                    reason=update.reason,
                )
            )
            self.metrics.pending.set(len(self.state.approvals))
            log.info(
                "Order %s is %s%s; its pending exposure is released.",
                update.client_order_id,
                update.status,
                f" ({update.reason})" if update.reason else "",
            )
        elif not approval.acknowledged:
            # Any update, even `pending_new`, means execution has logged the order and owns it.
            self._record(
                statelog.OrderAcknowledged(ts_logged_ns=now, client_order_id=update.client_order_id)
            )

    def expire_approvals(self, now_ns: int) -> None:
        timeout_ns = self.spec.risk.approval_timeout_ms * 1_000_000
        for approval in list(self.state.approvals.values()):
            if approval.acknowledged or now_ns - approval.ts_approved_ns <= timeout_ns:
                continue
            client_order_id = approval.order.client_order_id
            self._record(
                statelog.OrderClosed(
                    ts_logged_ns=now_ns,
                    client_order_id=client_order_id,
                    status=OrderStatus.EXPIRED,
                    reason=f"{APPROVAL_EXPIRED}: timeout_ms={self.spec.risk.approval_timeout_ms}",
                )
            )
            self.metrics.expired.inc()
            self.metrics.pending.set(len(self.state.approvals))
            log.warning(
                "Approval of order %s expired: execution did not acknowledge it within %d ms.",
                client_order_id,
                self.spec.risk.approval_timeout_ms,
            )

    # --- what it shows --------------------------------------------------------------------

    def risk_state(self, now_ns: int) -> RiskState:
        book = self.state.book
        return RiskState(
            breaker=BreakerState.CLOSED,
            halted_reason="spec.halted" if self.spec.halted else "",
            cash=book.cash,
            equity=book.equity(),
            realized_pnl=book.realized_pnl,
            positions=book.snapshot(now_ns),
            ts_event_ns=now_ns,
        )

    def publish_state(self, now_ns: int) -> None:
        self._update_gauges()
        if self._publisher is not None:
            self._publisher.publish(topics.RISK_STATE, self.risk_state(now_ns), ts_event_ns=now_ns)

    def _update_gauges(self) -> None:
        book = self.state.book
        for symbol, holding in book.holdings.items():
            self.metrics.position.labels(symbol).set(float(holding.quantity))
        self.metrics.cash.set(float(book.cash))
        self.metrics.equity.set(float(book.equity()))
        self.metrics.realized_pnl.set(float(book.realized_pnl))
        self.metrics.pending.set(len(self.state.approvals))

    def readiness(self) -> dict[str, bool]:
        return {**super().readiness(), "statelog": self._log is not None}

    def status(self) -> dict[str, Any]:
        book = self.state.book
        return {
            **super().status(),
            "cash": str(book.cash),
            "equity": str(book.equity()),
            "realized_pnl": str(book.realized_pnl),
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


def _invalid(signal: Signal) -> str:
    """What makes `signal` unusable as an order, or "" when nothing does."""
    if not signal.quantity.is_finite() or signal.quantity <= 0:
        return f"quantity must be > 0 (was {signal.quantity})"
    price = signal.limit_price
    if price is not None and (not price.is_finite() or price <= 0):
        return f"limit price must be > 0 (was {price})"
    if signal.order_type is OrderType.LIMIT and price is None:
        return "a limit order needs a limit price"
    return ""


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = ""
    while True:
        number, digit = divmod(number, 36)
        text = digits[digit] + text
        if number == 0:
            return text
