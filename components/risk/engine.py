"""The risk manager's decisions, without a bus: the same class serves a live risk manager
(`risk.service`) and a backtest on a simulated clock. Every method takes the time (`now_ns`) as
an argument; nothing here reads the clock, opens a socket or sleeps.

It checks signals (`check`), follows the market (`on_quote`, `on_trade`), books what execution
reports (`on_fill`, `on_order_update`), and lets time pass (`tick`: approvals expire, the breaker
recovers, sessions roll). Every change of state is a record: appended to the state log when
there is one (fsynced), then applied, so that a restart replays to the same state.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from decimal import Decimal

import msgspec
import prometheus_client as prom

from components.core.config import TradingSystemSpec
from components.core.errors import FillRejected
from components.core.events import (
    BreakerState,
    Fill,
    OrderStatus,
    OrderUpdate,
    Quote,
    Side,
    Signal,
    Trade,
)
from components.risk import breaker, lifecycle, limits, positions, records, statelog
from components.risk.metrics import RiskMetrics
from components.risk.session import SessionCalendar
from components.risk.stops import Stops

log = logging.getLogger(__name__)

ZERO = Decimal(0)
HUNDRED = Decimal(100)
TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
STOPS_STRATEGY = "risk.stops"
EXIT_DEADLINE_NS = 1_000_000_000


class RiskEngine:
    """Limits, positions and P&L, stops and the circuit breaker of one account.

    `store` is the state log (None: memory only, as in a backtest). `on_breaker` is called after
    each breaker transition took effect (the service publishes `RiskState` then).
    """

    def __init__(
        self,
        spec: TradingSystemSpec,
        *,
        metrics: RiskMetrics | None = None,
        store: statelog.StateStore | None = None,
        state: statelog.LoggedState | None = None,
        id_prefix: str = "risk",
        on_breaker: Callable[[records.BreakerChanged], None] | None = None,
    ) -> None:
        self.spec = spec
        config = spec.risk
        self.metrics = metrics or RiskMetrics(prom.CollectorRegistry())
        self.store = store
        self.state = state or statelog.LoggedState(config.initial_cash)
        self.symbols = frozenset(spec.symbols)
        self.limits = limits.from_config(config.limits, self.symbols)
        self.quotes: dict[str, Quote] = {}
        self.last_trades: dict[str, Decimal] = {}
        self.calendar = SessionCalendar(config.session)
        self.monitors = breaker.Monitors(config.breaker)
        self.stops = Stops(config.stops, self.state.stop_peaks.values())
        self.on_breaker = on_breaker
        self.id_prefix = id_prefix
        self._ids = itertools.count(1)
        self._next_session_ns = 0
        # A trip that could not be logged still stops trading (fail safe), in memory only.
        self.unlogged_trip = ""
        half = config.limits.max_order_quantity * config.breaker.half_open_size_pct / HUNDRED
        self.half_open_quantity = half
        self.exposure_book = limits.ExposureBook()
        for symbol in {a.order.symbol for a in self.state.approvals.values()} | set(
            self.state.book.holdings
        ):
            self._refresh_exposure(symbol)

    # --- the one way the state changes ----------------------------------------------------

    def record(self, record: records.Record, now_ns: int) -> None:
        """Number the record, log it (fsynced; raises `OSError`), then apply it."""
        record = msgspec.structs.replace(record, seq=self.state.seq + 1)
        if self.store is not None:
            try:
                self.store.append(record)
            except OSError:
                self.metrics.log_failures.inc()
                raise
        closing = (
            self.state.approvals.get(record.client_order_id)
            if isinstance(record, records.OrderClosed)
            else None
        )
        self.state.apply(record)
        if isinstance(record, records.OrderApproved):
            self._refresh_exposure(record.order.symbol)
        elif isinstance(record, records.FillApplied):
            symbol = record.fill.symbol
            self._refresh_exposure(symbol)
            if self.state.book.quantity(symbol) == 0:
                self.stops.forget(symbol)  # a later position trails from its own entry
        elif closing is not None:
            self._refresh_exposure(closing.order.symbol)
        elif isinstance(record, records.BreakerChanged):
            self._breaker_changed(record)
        if self.store is not None and self.store.snapshot_due:
            try:
                path = self.store.write_snapshot(self.state, now_ns)
            except OSError as exc:  # the records are on disk: only the rotation is late
                self.metrics.log_failures.inc()
                log.error("Could not write a state snapshot: %s.", exc)
            else:
                self.metrics.snapshots.inc()
                log.info("Wrote state snapshot %s at record %d.", path.name, self.state.seq)

    def start(self, system: str, now_ns: int) -> None:
        """Open a new log with the account's starting cash, and enter the current session."""
        if not self.state.opened:
            self.record(
                records.LogOpened(
                    ts_logged_ns=now_ns, system=system, initial_cash=self.spec.risk.initial_cash
                ),
                now_ns,
            )
        self.metrics.show_breaker(self.state.breaker.state)
        self._roll_session(now_ns)

    # --- signals --------------------------------------------------------------------------

    def check(self, signal: Signal, deadline_ns: int, now_ns: int) -> lifecycle.Decision:
        """Approve (and log) or reject `signal` at `now_ns`; every rejection is counted and
        logged. An `Approved` holds the order to publish."""
        known = self.state.signals.get(signal.signal_id)
        if known is not None:
            log.info("Signal %s was already approved as order %s.", signal.signal_id, known)
            return lifecycle.AlreadyApproved(signal, known)
        validated = lifecycle.validate(
            lifecycle.Unchecked(signal, deadline_ns), self.symbols, now_ns
        )
        if isinstance(validated, lifecycle.Rejected):
            return self.reject(validated)
        rejection = self.first_rejection(signal)
        if rejection is not None:
            return self.reject(lifecycle.Rejected(signal, rejection))
        approved = lifecycle.approve(validated, self._next_order_id(), now_ns)
        try:
            self.record(records.OrderApproved(ts_logged_ns=now_ns, order=approved.order), now_ns)
        except OSError as exc:
            log.error("Could not log the approval of signal %s: %s.", signal.signal_id, exc)
            reason = limits.RejectReason.STATE_LOG_FAILED
            return self.reject(
                lifecycle.Rejected(signal, limits.Rejection.of(reason, error=exc.strerror))
            )
        self.metrics.checks.labels("approved").inc()
        self.metrics.pending.set(len(self.state.approvals))
        order = approved.order
        log.info(
            "Approved signal %s as order %s (%s %s %s).",
            signal.signal_id,
            order.client_order_id,
            order.side,
            order.quantity,
            order.symbol,
        )
        return approved

    def first_rejection(self, signal: Signal) -> limits.Rejection | None:
        """The first reason to refuse a validated `signal`: halt, breaker, price, limits."""
        reason = limits.RejectReason
        if self.spec.halted:
            return limits.Rejection.of(reason.HALTED, symbol=signal.symbol, by="spec.halted")
        context = self.context()
        breaker_state = self.state.breaker.state
        if self.unlogged_trip or breaker_state is not BreakerState.CLOSED:
            config = self.spec.risk.breaker
            reduces = context.exposure(signal.symbol).reduced_by(signal.side, signal.quantity)
            if not (reduces and config.allow_reducing_when_open):
                if self.unlogged_trip or breaker_state is BreakerState.OPEN:
                    return limits.Rejection.of(
                        reason.BREAKER_OPEN,
                        symbol=signal.symbol,
                        why=self.unlogged_trip or self.state.breaker.reason,
                    )
                if signal.quantity > self.half_open_quantity:
                    return limits.Rejection.of(
                        reason.BREAKER_HALF_OPEN_SIZE,
                        symbol=signal.symbol,
                        quantity=signal.quantity,
                        limit=self.half_open_quantity,
                    )
        if limits.order_price(self.quotes.get(signal.symbol), signal.side) is None:
            return limits.Rejection.of(reason.NO_PRICE, symbol=signal.symbol)
        for limit in self.limits:
            rejection = limit.check(signal, context)
            if rejection is not None:
                return rejection
        return None

    def reject(self, rejected: lifecycle.Rejected) -> lifecycle.Rejected:
        self.count_rejection(rejected.rejection, rejected.signal.symbol)
        log.info("Rejected signal %s: %s.", rejected.signal.signal_id, rejected.rejection.message)
        return rejected

    def count_rejection(self, rejection: limits.Rejection, symbol: str) -> None:
        self.metrics.checks.labels("rejected").inc()
        # Only configured symbols become label values: a label per unknown symbol is unbounded.
        label = symbol if symbol in self.symbols else "unknown"
        self.metrics.rejections.labels(rejection.reason.value, label).inc()

    def context(self) -> limits.Context:
        exposure_book = self.exposure_book
        return limits.Context(
            exposures=exposure_book.exposures,
            quotes=self.quotes,
            last_trades=self.last_trades,
            equity=self.equity(),
            open_orders=len(self.state.approvals),
            others_notional=exposure_book.others,
        )

    def exposures(self) -> dict[str, limits.Exposure]:
        """Per symbol with a position or pending orders: its exposure."""
        return dict(self.exposure_book.exposures)

    def equity(self) -> Decimal:
        """Cash plus positions at mid (at cost without one): `state.book.equity()`, kept up to
        date event by event rather than summed again."""
        return self.state.book.cash + self.exposure_book.market_value

    def _refresh_exposure(self, symbol: str) -> None:
        book = self.state.book
        pending_buy = pending_sell = ZERO
        for approval in self.state.approvals.values():
            if approval.order.symbol == symbol:
                if approval.order.side is Side.BUY:
                    pending_buy += approval.remaining
                else:
                    pending_sell += approval.remaining
        holding = book.holdings.get(symbol)
        mid = book.marks.get(symbol)
        value = ZERO
        if holding is not None:
            value = holding.cost if mid is None else holding.quantity * mid
        exposure = limits.Exposure(book.quantity(symbol), pending_buy, pending_sell)
        self.exposure_book.update(symbol, exposure, mid, value)

    def _next_order_id(self) -> str:
        return f"{self.id_prefix}-{next(self._ids)}"

    # --- the market -----------------------------------------------------------------------

    def on_trade(self, trade: Trade) -> None:
        if trade.price.is_finite() and trade.price > 0:
            self.last_trades[trade.symbol] = trade.price

    def on_quote(self, quote: Quote, now_ns: int) -> list[lifecycle.Approved]:
        """Mark to market, watch for a trip, and raise the exits stops call for; returns the
        exits approved (each to publish like any approved order)."""
        bid, ask = quote.bid_price, quote.ask_price
        if not (bid.is_finite() and ask.is_finite() and 0 < bid <= ask):
            self.metrics.skipped_quotes.inc()
            log.warning(
                "Skipped a malformed or crossed quote for %s: %s / %s.", quote.symbol, bid, ask
            )
            return []
        mid = quote.mid
        self.quotes[quote.symbol] = quote
        self.state.book.mark(quote.symbol, mid)
        self._refresh_exposure(quote.symbol)
        self._roll_session(now_ns)
        trip = self.monitors.on_price(now_ns, quote.symbol, mid)
        if trip is None and now_ns < self._next_session_ns:  # the session's P&L is current
            trip = self.monitors.on_equity(now_ns, self.equity(), self.daily_pnl())
        if trip is not None:
            self.trip(*trip, now_ns)
        return self._stop_exits(quote, now_ns)

    def _stop_exits(self, quote: Quote, now_ns: int) -> list[lifecycle.Approved]:
        if not self.stops.enabled:
            return []
        holding = self.state.book.holdings.get(quote.symbol)
        if holding is None or holding.quantity == 0:
            return []
        reason = self.stops.exit_reason(quote.symbol, holding, quote)
        self._log_stop_peak(quote.symbol, holding, now_ns)
        if reason is None or self._exit_pending(quote.symbol):
            return []
        self.metrics.stop_exits.labels(reason.split(":")[0]).inc()
        log.warning("Stop hit, closing the position: %s.", reason)
        signal = Signal(
            signal_id=f"{self.id_prefix}-stop-{next(self._ids)}",
            strategy=STOPS_STRATEGY,
            symbol=quote.symbol,
            side=Side.SELL if holding.quantity > 0 else Side.BUY,
            # At most one order's worth: the rest exits on a later quote, once this one is done.
            quantity=min(abs(holding.quantity), self.spec.risk.limits.max_order_quantity),
            ts_event_ns=now_ns,
            ts_origin_ns=now_ns,
            reason=reason,
        )
        decision = self.check(signal, now_ns + EXIT_DEADLINE_NS, now_ns)
        return [decision] if isinstance(decision, lifecycle.Approved) else []

    def _log_stop_peak(self, symbol: str, holding: positions.Holding, now_ns: int) -> None:
        logged = self.state.stop_peaks.get(symbol)
        peak = self.stops.peak_to_log(symbol, holding, logged, now_ns)
        if peak is None:
            return
        try:
            self.record(peak, now_ns)
        except OSError as exc:
            # The stop still trails from the peak in memory; only a restart would trail from
            # the older logged one. The next quote tries again.
            log.error("Could not log the trailing-stop peak of %s: %s.", symbol, exc)

    def _exit_pending(self, symbol: str) -> bool:
        return any(
            a.order.symbol == symbol and a.order.signal_id.startswith(f"{self.id_prefix}-stop-")
            for a in self.state.approvals.values()
        )

    # --- P&L ------------------------------------------------------------------------------

    def daily_pnl(self) -> Decimal:
        start = self.state.session_start_equity
        return ZERO if start is None else self.equity() - start

    def _roll_session(self, now_ns: int) -> None:
        if now_ns < self._next_session_ns:
            return
        session = self.calendar.session_of(now_ns)
        if session != self.state.session:
            book = self.state.book
            unmarked = [s for s, h in book.holdings.items() if h.quantity and s not in book.marks]
            if unmarked:
                # The session's P&L counts from its start equity: wait for every position's price
                # (after a restart) rather than start it from positions valued at cost.
                return
            equity = self.equity()
            try:
                self.record(
                    records.SessionStarted(
                        ts_logged_ns=now_ns, session=session, start_equity=equity
                    ),
                    now_ns,
                )
            except OSError as exc:
                log.error("Could not log the start of session %s: %s.", session, exc)
                return
            log.info("Session %s started; equity %s.", session, equity)
        self._next_session_ns = self.calendar.end_ns(session)

    # --- the breaker ----------------------------------------------------------------------

    def trip(self, trigger: breaker.Trigger, reason: str, now_ns: int) -> None:
        proposal = self.state.breaker.propose(trigger, reason, now_ns, self.state.session)
        if proposal is None:
            return
        try:
            self.record(proposal, now_ns)
        except OSError as exc:
            self.unlogged_trip = f"{trigger}: {reason} (not logged: {exc.strerror})"
            log.error("Breaker tripped (%s: %s) but could not be logged: %s.", trigger, reason, exc)

    def reset(self, by: str, now_ns: int) -> bool:
        """A manual reset (authenticated by the caller): close the breaker. False if closed."""
        self.unlogged_trip = ""
        proposal = self.state.breaker.propose(
            breaker.Trigger.MANUAL_RESET, f"reset by {by}", now_ns, self.state.session
        )
        if proposal is None:
            return False
        self.record(proposal, now_ns)
        return True

    def _breaker_changed(self, change: records.BreakerChanged) -> None:
        if change.state is not BreakerState.OPEN:
            # Watch afresh: the move that tripped it is still in the windows, and would trip
            # the breaker again on the next quote.
            self.monitors = breaker.Monitors(self.spec.risk.breaker)
        self.metrics.show_breaker(change.state)
        self.metrics.breaker_transitions.labels(change.state.value, change.trigger).inc()
        level = logging.WARNING if change.state is not BreakerState.CLOSED else logging.INFO
        log.log(level, "Circuit breaker %s (%s): %s.", change.state, change.trigger, change.reason)
        if self.on_breaker is not None:
            self.on_breaker(change)

    # --- what execution reports -----------------------------------------------------------

    def on_fill(self, fill: Fill, now_ns: int) -> bool:
        """Book `fill` once; False if its id was booked before. `FillRejected` (a `ValueError`)
        if the book cannot take it, malformed or out of bounds (nothing logged, nothing changed),
        `OSError` if it cannot be logged (it is then not booked: execution sends it again)."""
        if fill.fill_id in self.state.fill_ids:
            self.metrics.duplicate_fills.inc()
            log.info("Fill %s was already applied; ignored.", fill.fill_id)
            return False
        try:
            self.state.book.effect_of(fill)  # its whole effect, before it is logged
        except FillRejected as exc:
            self.metrics.invalid_fills.inc()
            log.error("Refused fill %s of order %s: %s.", fill.fill_id, fill.client_order_id, exc)
            raise
        self.record(records.FillApplied(ts_logged_ns=now_ns, fill=fill), now_ns)
        self.metrics.fills.inc()
        self.metrics.pending.set(len(self.state.approvals))
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
        return True

    def on_order_update(self, update: OrderUpdate, now_ns: int) -> None:
        approval = self.state.approvals.get(update.client_order_id)
        if approval is None:
            return  # closed already, or not ours
        if update.status in TERMINAL:
            self.record(
                records.OrderClosed(
                    ts_logged_ns=now_ns,
                    client_order_id=update.client_order_id,
                    status=update.status,
                    reason=update.reason,
                ),
                now_ns,
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
            self.record(
                records.OrderAcknowledged(
                    ts_logged_ns=now_ns, client_order_id=update.client_order_id
                ),
                now_ns,
            )

    # --- time -----------------------------------------------------------------------------

    def tick(self, now_ns: int) -> None:
        """Let time pass: expire approvals, roll the session, let the breaker recover."""
        self.expire_approvals(now_ns)
        self._roll_session(now_ns)
        due = self.state.breaker.due(self.spec.risk.breaker, now_ns, self.state.session)
        if due is not None:
            try:
                self.record(due, now_ns)
            except OSError as exc:
                log.error("Could not log the breaker's %s: %s.", due.trigger, exc)

    def expire_approvals(self, now_ns: int) -> None:
        timeout_ms = self.spec.risk.approval_timeout_ms
        for approval in list(self.state.approvals.values()):
            if approval.acknowledged or now_ns - approval.ts_approved_ns <= timeout_ms * 1_000_000:
                continue
            client_order_id = approval.order.client_order_id
            try:
                self.record(
                    records.OrderClosed(
                        ts_logged_ns=now_ns,
                        client_order_id=client_order_id,
                        status=OrderStatus.EXPIRED,
                        reason=f"{APPROVAL_EXPIRED}: timeout_ms={timeout_ms}",
                    ),
                    now_ns,
                )
            except OSError as exc:
                # Not logged, not released: its exposure keeps counting (on doubt, reject) and
                # the next tick tries again.
                log.error("Could not log the expiry of order %s: %s.", client_order_id, exc)
                return
            self.metrics.expired.inc()
            self.metrics.pending.set(len(self.state.approvals))
            log.warning(
                "Approval of order %s expired: execution did not acknowledge it within %d ms.",
                client_order_id,
                timeout_ms,
            )
