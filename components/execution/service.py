"""The execution engine: sends every approved order to the venue exactly once, and reports back.

For each `Order` on `risk.order` it checks that the id is new and valid (the order log remembers
every id across restarts), appends the order to the log, acknowledges it (`pending_new`, which
tells the risk manager that execution owns it), then submits it through the gateway (rate limit,
retries, lookup before any resend). What the venue reports goes through the order's lifecycle
(`lifecycle.OrderState`): each transition is logged, then published on `exec.order`, each new
fill on `exec.fill`, under the order's trace id. A transition no venue can make is refused,
logged and counted.

Fills are re-sent until the risk manager confirms it booked them (`FillBooked` on
`risk.fill_booked`): publish/subscribe drops what nobody is connected to receive, and a fill must
not be lost to a restarting broker or risk manager. The confirmations are logged too, so a
restarted engine re-sends only what was never confirmed. An order's final update can be lost the
same way, leaving its exposure reserved at the risk manager: each `risk.state` lists the orders
the risk manager still holds, and the final update of every one of them this engine knows to be
over is published again (the risk manager closes an order once and ignores the rest).

Each order carries a pre-trade slippage estimate (`slippage`); each fill's realized slippage is
exported. An order of at least `algo.min_quantity` is worked as a TWAP/VWAP parent (`algos`):
released at the risk manager and sent as children, each checked by the risk manager.

On start, before it takes any order, it reconciles every order of its log that was not terminal
with the venue (by client order id), and loads the venue's open orders and positions; orders then
wait until the risk manager has said where its breaker stands (`risk.state`), and are refused if
it says nothing in time. While the breaker is open it refuses new orders. On shutdown (SIGTERM) it
cancels whatever is still working at the venue, all at once within the rate limit, then fetches
each order's final state from the venue and applies what it shows (a fill that beat the cancel
counts like any other), all within `cancel_timeout_s`; an order whose outcome it could not learn
is named (log line, `execution_orders_unknown_outcome`, `/status`), never left silently pending.
Its last log line carries the venue's own positions (`venue_final`), which the closing check of
`tradingsystem run` compares with the risk manager's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from decimal import Decimal
from typing import Any

from components.core import topics, wire
from components.core.errors import BusError
from components.core.events import (
    Bar,
    BookSnapshot,
    BreakerState,
    CheckSignal,
    Fill,
    FillBooked,
    Order,
    OrderStatus,
    OrderUpdate,
    Quote,
    RiskState,
    SignalChecked,
    Trade,
)
from components.execution import algos, lifecycle, orderlog, slippage, venues
from components.execution.gateway import Gateway, GatewayMetrics, SubmitFailed
from components.execution.metrics import ExecutionMetrics
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.base import OrderRefused, Report, Venue, VenueError
from components.runtime.bus import Publisher, Subscriber
from components.runtime.component import Component

log = logging.getLogger(__name__)

APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
RESEND_AFTER_S = 1.0  # a fill not confirmed this long after it was sent is sent again
UNRESOLVED_RETRY_S = 2.0  # how often orders of unknown fate are looked up again
HOLD_FOR_RISK_STATE_S = 3.0  # at start, orders wait this long for the risk manager's breaker
FINAL_STATE_POLL_S, FINAL_STATE_POLL_MAX_S = 0.1, 1.0  # lookups of orders at shutdown, doubling
FINAL_POSITIONS_TIMEOUT_S = 2.0  # bound on the last positions query at shutdown
CLIENT_ORDER_ID = re.compile(r"^[A-Za-z0-9._:-]{1,48}$")  # Alpaca allows up to 48 characters


class ExecutionEngine(Component):
    name = "execution"

    def __init__(self, *args: Any, venue: Venue | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.spec.execution
        self.metrics = ExecutionMetrics(self.registry)
        self.venue: Venue = venue or venues.build(config)
        self.limiter = TokenBucket(config.rate_limit_per_minute, config.rate_limit_burst)
        self.venue.pace = self.limiter.acquire
        self.gateway = Gateway(
            self.venue,
            self.limiter,
            Backoff.from_config(config.retry),
            GatewayMetrics(self.registry),
        )
        self.slippage = slippage.SlippageModel(
            config.slippage.impact_coefficient, config.slippage.window_bars
        )
        self._symbols = frozenset(self.spec.symbols)
        self.orders = orderlog.Orders()
        self.breaker = BreakerState.CLOSED
        self.breaker_reason = ""
        # Until the risk manager has said where its breaker stands, orders wait (see `run`).
        self._risk_heard: asyncio.Event | None = None
        self._breaker_unknown = False
        self._held: list[tuple[Order, wire.Envelope]] = []
        self.venue_positions: dict[str, Decimal] = {}
        self.reconciled = False
        self._log: orderlog.OrderLog | None = None
        self._publisher: Publisher | None = None
        self._fills_sent_at: dict[str, float] = {}  # fill id -> monotonic time of the last send
        # client order id -> monotonic time its final update was last published: a `risk.state`
        # may have been sent before the risk manager saw it (only the last RESEND_AFTER_S kept).
        self._final_sent_at: dict[str, float] = {}
        self._unresolved: set[str] = set()  # sent, fate unknown: looked up again later
        self._unknown_outcome: list[str] = []  # working at shutdown, and how they ended unknown
        self._tasks: set[asyncio.Task[None]] = set()
        # Asks the risk manager to check a child order (set in `run`, or by a test).
        self.check_signal: Callable[[CheckSignal], Awaitable[SignalChecked]] | None = None

    def restore(self) -> None:
        """Open the order log under the data directory: every id in it is spent."""
        path = self.settings.data_dir / orderlog.ORDER_LOG_NAME
        self._log, self.orders = orderlog.OrderLog.restore(path)
        self.venue.keep_state_in(self.settings.data_dir)
        log.info(
            "Execution restored %d order(s), %d not terminal, from %s.",
            len(self.orders.states),
            len(self.orders.open),
            path,
        )

    async def run(self) -> None:
        if self._log is None:
            self.restore()
        self._publisher = self.bus.publisher()
        # Subscribed before reconciling, so that orders approved meanwhile wait in the queue.
        subscriber = self.bus.subscriber(
            [
                topics.APPROVED_ORDERS,
                topics.QUOTES,
                topics.TRADES,
                topics.BOOKS,
                topics.BARS,
                topics.FILLS_BOOKED,
                topics.RISK_STATE,
            ]
        )
        requester = self.bus.requester()
        timeout_s = self.spec.strategy.risk_timeout_ms / 1000

        async def check_signal(request: CheckSignal) -> SignalChecked:
            reply = await requester.request(topics.RISK_CHECK, request, timeout_s=timeout_s)
            if not isinstance(reply.payload, SignalChecked):
                raise BusError(f"risk answered {type(reply.payload).__name__}")
            return reply.payload

        self.check_signal = check_signal
        await self.venue.start()
        await self.reconcile()
        for parent_id, parent in self.orders.parents.items():
            if not parent.done:
                self._spawn(self._work_parent(parent_id))
        self._risk_heard = asyncio.Event()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._expect_risk_state())
            tasks.create_task(self._consume(subscriber))
            tasks.create_task(self._forward_reports())
            tasks.create_task(self._resend_unconfirmed_fills())
            tasks.create_task(self._resolve_unknown())

    async def close(self) -> None:
        """Cancel what is still working and learn how each order ended, within
        `cancel_timeout_s`; name what stays unknown; say what the venue holds; close the log."""
        for task in list(self._tasks):
            task.cancel()
        if self._log is not None and self._publisher is not None:
            timeout_s = self.spec.execution.cancel_timeout_s
            working = sorted(self.orders.open)
            # The run's report forwarder is gone with `run`: outcomes arrive through this one.
            forwarder = asyncio.create_task(self._forward_reports())
            try:
                async with asyncio.timeout(timeout_s):
                    await self.cancel_working()
            except TimeoutError:
                log.error(
                    "Cancelling and looking up %d working order(s) at %s took more than %g s.",
                    len(working),
                    self.venue.name,
                    timeout_s,
                )
            positions_known = await self._final_positions()
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder
            self._name_unknown(working)
            self._log_venue_final(positions_known)
        await self.venue.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def cancel_working(self) -> None:
        """Ask the venue to cancel every working order, all at once (the rate limiter paces
        them), then ask it how each one ended until every one has. Reports and lookups alike
        go through `on_report`, so a fill that beat its cancel is applied like any other."""
        working = [s for s in self.orders.states.values() if not s.terminal]
        for state in working:
            if state.status is not OrderStatus.PENDING_CANCEL:
                self._publish_update(
                    state.force(OrderStatus.PENDING_CANCEL, "shutdown", time.time_ns())
                )
        await asyncio.gather(*(self._cancel_one(s.client_order_id) for s in working))
        pause_s = FINAL_STATE_POLL_S
        while still := [s.client_order_id for s in working if not s.terminal]:
            # Not only the cancel's report: a submit cut short may never have reached the venue,
            # a venue reports nothing about an order it does not have, and a stream may be gone.
            await asyncio.gather(*(self._reconcile_one(cid) for cid in still))
            if any(not s.terminal for s in working):
                await asyncio.sleep(pause_s)  # a cancel the venue acknowledged is on its way
                pause_s = min(2 * pause_s, FINAL_STATE_POLL_MAX_S)

    async def _cancel_one(self, client_order_id: str) -> None:
        try:
            await self.gateway.request(
                f"cancelling order {client_order_id}", lambda: self.venue.cancel(client_order_id)
            )
        except Exception as exc:  # its lookup says how it ended
            log.error("Could not cancel order %s at %s: %s.", client_order_id, self.venue.name, exc)

    async def _final_positions(self) -> bool:
        """Ask the venue for its positions one last time (for the closing check); whether it
        answered."""
        try:
            async with asyncio.timeout(FINAL_POSITIONS_TIMEOUT_S):
                self.venue_positions = await self.gateway.request(
                    "listing positions", self.venue.positions
                )
        except Exception as exc:
            log.error("Could not list the positions at %s at shutdown: %r.", self.venue.name, exc)
            return False
        return True

    def _name_unknown(self, working: list[str]) -> None:
        """Every order of `working` that did not end: its outcome at the venue is unknown."""
        unknown = sorted(cid for cid in working if not self.orders.states[cid].terminal)
        self._unknown_outcome = unknown
        self.metrics.unknown_outcome.set(len(unknown))
        if unknown:
            log.error(
                "Shutdown left %d order(s) of unknown outcome at %s (pending cancel here; the "
                "next start looks them up): %s.",
                len(unknown),
                self.venue.name,
                ", ".join(unknown),
            )

    def _log_venue_final(self, positions_known: bool) -> None:
        """The last word of the engine: what the venue holds, as the venue said it (the
        closing check of `tradingsystem run` reads this line's `venue_final` field)."""
        positions = {s: str(q) for s, q in sorted(self.venue_positions.items())}
        log.info(
            "Execution stopped; %s %s %s.",
            self.venue.name,
            "holds" if positions_known else "did not answer; last known positions",
            positions,
            extra={
                "venue_final": {
                    "venue": self.venue.name,
                    "positions": positions,
                    "positions_known": positions_known,
                    "unknown_outcome_orders": self._unknown_outcome,
                }
            },
        )

    # --- start-up ---------------------------------------------------------------------------

    async def reconcile(self) -> None:
        """Bring every order the log left open up to date with the venue, and load the venue's
        open orders and positions; only then are new orders accepted."""
        for client_order_id in list(self.orders.open):
            await self._reconcile_one(client_order_id)
        try:
            open_orders = await self.gateway.request("listing open orders", self.venue.open_orders)
            self.venue_positions = await self.gateway.request(
                "listing positions", self.venue.positions
            )
        except VenueError as exc:
            log.error("Could not load the venue's open orders and positions: %s.", exc)
            open_orders = []
        foreign = sorted(
            r.client_order_id for r in open_orders if r.client_order_id not in self.orders.states
        )
        if foreign:
            self.metrics.reconciliations.labels("foreign").inc(len(foreign))
            log.warning(
                "%d order(s) open at %s were not sent by this engine: %s.",
                len(foreign),
                self.venue.name,
                ", ".join(foreign),
            )
        self.reconciled = True
        log.info(
            "Reconciled with %s: %d order(s) still open, venue positions %s.",
            self.venue.name,
            len(self.orders.open),
            {symbol: str(qty) for symbol, qty in sorted(self.venue_positions.items())},
        )

    async def _reconcile_one(self, client_order_id: str) -> None:
        state = self.orders.states[client_order_id]
        try:
            report = await self.gateway.find(client_order_id)
        except Exception as exc:  # a venue error, or an answer that could not be read
            self.metrics.reconciliations.labels("error").inc()
            self._unresolved.add(client_order_id)
            log.error(
                "Could not look up order %s at %s: %r.", client_order_id, self.venue.name, exc
            )
            return
        self._unresolved.discard(client_order_id)
        if report is None:
            self.metrics.reconciliations.labels("absent").inc()
            reason = f"NOT_AT_VENUE: venue={self.venue.name}"
            log.warning(
                "Order %s is not at %s; closing it as canceled.", client_order_id, self.venue.name
            )
            self._publish_update(state.force(OrderStatus.CANCELED, reason, time.time_ns()))
            return
        self.metrics.reconciliations.labels("found").inc()
        self.on_report(report)

    # --- orders in --------------------------------------------------------------------------

    async def _consume(self, subscriber: Subscriber) -> None:
        async for envelope in subscriber:
            payload = envelope.payload
            if isinstance(payload, Quote):
                self.slippage.on_quote(payload)
                self.venue.on_quote(payload)
            elif isinstance(payload, Trade):
                self.venue.on_trade(payload)
            elif isinstance(payload, BookSnapshot):
                self.venue.on_book(payload)
            elif isinstance(payload, Bar):
                self.slippage.on_bar(payload)
            elif isinstance(payload, Order):
                if self._risk_heard is not None and not self._risk_heard.is_set():
                    self._held.append((payload, envelope))  # idle until the breaker is known
                else:
                    self._spawn(self.on_order(payload, envelope))
            elif isinstance(payload, FillBooked):
                self.on_fill_booked(payload)
            elif isinstance(payload, RiskState):
                self.on_risk_state(payload)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expect_risk_state(self) -> None:
        """Release the orders held at start once the breaker is known; without word from the
        risk manager in time, refuse them (and what follows) until it speaks."""
        assert self._risk_heard is not None
        try:
            await asyncio.wait_for(self._risk_heard.wait(), HOLD_FOR_RISK_STATE_S)
        except TimeoutError:
            log.warning(
                "No risk.state within %g s: orders are refused until the breaker is known.",
                HOLD_FOR_RISK_STATE_S,
            )
            self._breaker_unknown = True
            self._risk_heard.set()
        held, self._held = self._held, []
        for order, envelope in held:
            self._spawn(self.on_order(order, envelope))

    def on_risk_state(self, state: RiskState) -> None:
        self._breaker_unknown = False
        if self._risk_heard is not None:
            self._risk_heard.set()
        if state.breaker is not self.breaker:
            log.warning(
                "Risk breaker is %s%s.",
                state.breaker,
                f": {state.halted_reason}" if state.halted_reason else "",
            )
        self.breaker = state.breaker
        self.breaker_reason = state.halted_reason
        self.resend_final_updates(state.open_order_ids)

    def resend_final_updates(self, held: list[str]) -> None:
        """Publish again the final update of every order in `held` (what the risk manager still
        reserves exposure for) that is over here: the first one was lost, or is on its way."""
        now = time.monotonic()
        self._final_sent_at = {
            cid: at for cid, at in self._final_sent_at.items() if now - at < RESEND_AFTER_S
        }
        for client_order_id in held:
            state = self.orders.states.get(client_order_id)
            # Not received (the approval's `Order` was lost, or is on its way): the risk manager
            # expires the unacknowledged approval itself. Still working: its end will come.
            if state is None or not state.terminal or client_order_id in self._final_sent_at:
                continue
            log.info(
                "Risk manager still holds order %s, which is %s here; sending its final update "
                "again.",
                client_order_id,
                state.status,
            )
            # Not logged: the order log holds this update already; this is a second copy.
            now_ns = time.time_ns()
            self._send_update(state.update(now_ns), now_ns)
            self._final_sent_at[client_order_id] = now
            self.metrics.final_updates_resent.inc()

    async def on_order(self, order: Order, envelope: wire.Envelope) -> None:
        assert self._log is not None
        now = time.time_ns()
        if order.ts_origin_ns > 0 and now >= order.ts_origin_ns:
            self.metrics.tick_to_order.observe((now - order.ts_origin_ns) / 1e9)
        client_order_id = order.client_order_id
        if client_order_id in self.orders.states:
            self.metrics.duplicates.inc()
            log.warning("Order %s was received before; dropped, not sent again.", client_order_id)
            return
        estimate = self.slippage.estimate(order.symbol, order.quantity)
        # The id is spent (on disk) before anything can reach the venue.
        record = orderlog.OrderReceived(
            ts_logged_ns=now,
            order=order,
            trace_id=envelope.trace_id,
            venue=self.venue.name,
            arrival_mid=estimate.arrival_mid if estimate else None,
            expected_slippage_bps=estimate.total_bps if estimate else None,
        )
        self._log.append(record)
        self.orders.apply(record)
        state = self.orders.states[client_order_id]
        if estimate is not None:
            self.metrics.expected_slippage.labels(self._label(order.symbol)).observe(
                estimate.total_bps
            )

        refusal = self._refusal(order, now)
        if refusal:
            self._reject(state, refusal)
            return
        # pending_new: execution owns the order. Not logged again: `OrderReceived` says as much.
        self._publish_update(state.update(now), logged=False)
        if algos.works(self.spec.execution.algo, order):
            self._start_parent(state, now)
            return
        started = time.perf_counter()
        try:
            ack = await self.gateway.submit(order)
        except OrderRefused as exc:
            self._reject(state, f"VENUE_REJECTED: {exc.reason}")
            return
        except SubmitFailed as exc:
            self._reject(state, f"VENUE_UNAVAILABLE: {exc}")
            return
        except VenueError as exc:
            self._unresolved.add(client_order_id)
            log.error(
                "Order %s has an unknown fate (%s); it will be looked up.", client_order_id, exc
            )
            return
        self.metrics.submit_latency.observe(time.perf_counter() - started)
        log.info(
            "Sent order %s (%s %s %s) to %s; expected slippage %s bps.",
            client_order_id,
            order.side,
            order.quantity,
            order.symbol,
            self.venue.name,
            "unknown" if estimate is None else f"{estimate.total_bps:.2f}",
        )
        self.on_report(ack)

    # --- TWAP / VWAP parents ----------------------------------------------------------------

    def _start_parent(self, state: lifecycle.OrderState, now_ns: int) -> None:
        """Work `state`'s order as slices; release its reservation at the risk manager (each
        child is checked and reserved on its own)."""
        assert self._log is not None
        config = self.spec.execution.algo
        slices = algos.schedule(config, state.order.quantity, now_ns)
        record = orderlog.ParentStarted(
            ts_logged_ns=now_ns, parent_id=state.client_order_id, kind=config.kind, slices=slices
        )
        self._log.append(record)
        self.orders.apply(record)
        reason = f"SLICED: algo={config.kind}, children={len(slices)}"
        log.info(
            "Order %s is worked as %d %s slices.", state.client_order_id, len(slices), config.kind
        )
        self._publish_update(state.force(OrderStatus.CANCELED, reason, now_ns))
        self._spawn(self._work_parent(state.client_order_id))

    async def _work_parent(self, parent_id: str) -> None:
        parent = self.orders.parents[parent_id]
        order = self.orders.states[parent_id].order
        for part in parent.slices:
            if part.index in parent.sent:
                continue  # sent before a restart: the risk manager knows its signal id
            delay_s = (part.due_ns - time.time_ns()) / 1e9
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            now = time.time_ns()
            refusal = self._refusal(order, now, check_age=False)
            if refusal:
                self._slice_sent(parent_id, part, None, refusal)
                continue
            request = CheckSignal(
                signal=algos.child_signal(order, part, parent.kind, now),
                deadline_ns=now + self.spec.strategy.risk_timeout_ms * 1_000_000,
            )
            reply: SignalChecked | None = None
            error = ""
            for _ in range(3):  # the same signal id each time: one order at most
                assert self.check_signal is not None
                try:
                    reply = await self.check_signal(request)
                    break
                except BusError as exc:
                    error = f"RISK_UNAVAILABLE: {exc}"
            if reply is None:
                self._slice_sent(parent_id, part, None, error)
            elif reply.approved:
                self._slice_sent(parent_id, part, reply.client_order_id, "")
            else:
                self._slice_sent(parent_id, part, None, reply.reason)
        log.info("Parent order %s: every slice sent.", parent_id)

    def _slice_sent(
        self, parent_id: str, part: algos.Slice, client_order_id: str | None, reason: str
    ) -> None:
        assert self._log is not None
        parent = self.orders.parents[parent_id]
        record = orderlog.SliceSent(
            ts_logged_ns=time.time_ns(),
            parent_id=parent_id,
            index=part.index,
            approved=client_order_id is not None,
            client_order_id=client_order_id,
            reason=reason,
        )
        self._log.append(record)
        self.orders.apply(record)
        outcome = "approved" if client_order_id else reason.partition(":")[0].lower() or "rejected"
        self.metrics.algo_slices.labels(parent.kind, outcome).inc()
        if client_order_id:
            log.info("Slice %d of %s approved as order %s.", part.index, parent_id, client_order_id)
        else:
            log.warning("Slice %d of %s not sent: %s.", part.index, parent_id, reason)

    def _refusal(self, order: Order, now_ns: int, *, check_age: bool = True) -> str:
        """Why `order` must not be sent, or "": halted, breaker open, bad id, or too old."""
        if self.spec.halted:
            return "HALTED: by=spec.halted"
        if self.breaker is BreakerState.OPEN:
            return f"BREAKER_OPEN: reason={self.breaker_reason or 'unknown'}"
        if self._breaker_unknown:
            return f"RISK_STATE_UNKNOWN: no risk.state within {HOLD_FOR_RISK_STATE_S:g} s"
        if not CLIENT_ORDER_ID.match(order.client_order_id):
            return f"INVALID_CLIENT_ORDER_ID: length={len(order.client_order_id)}, max=48"
        age_ms = (now_ns - order.ts_event_ns) / 1e6
        if check_age and age_ms > self.spec.risk.approval_timeout_ms:
            # The risk manager has expired (or will expire) this approval: sending it now would
            # make a position the risk manager no longer counts as pending.
            return (
                f"{APPROVAL_EXPIRED}: age_ms={age_ms:.0f}, "
                f"timeout_ms={self.spec.risk.approval_timeout_ms}"
            )
        return ""

    def _reject(self, state: lifecycle.OrderState, reason: str) -> None:
        log.warning("Rejected order %s: %s.", state.client_order_id, reason)
        self.metrics.rejections.labels(reason.partition(":")[0]).inc()
        self._publish_update(state.force(OrderStatus.REJECTED, reason, time.time_ns()))

    async def _resolve_unknown(self) -> None:
        """Look up, again and again, the orders whose submit ended without an answer."""
        while True:
            await asyncio.sleep(UNRESOLVED_RETRY_S)
            for client_order_id in sorted(self._unresolved):
                await self._reconcile_one(client_order_id)

    # --- what the venue reports -------------------------------------------------------------

    async def _forward_reports(self) -> None:
        while True:
            report = await self.venue.reports.get()
            try:
                self.on_report(report)
            except Exception:  # one bad report must not stop the ones behind it
                self.metrics.invalid_reports.inc()
                log.exception(
                    "Skipped a report from %s about order %s that failed to apply.",
                    self.venue.name,
                    report.client_order_id,
                )

    def on_report(self, report: Report) -> None:
        """Apply one venue report to its order; log, then publish, what it changed."""
        state = self.orders.states.get(report.client_order_id)
        if state is None:
            self.metrics.unknown_reports.inc()
            log.warning(
                "Ignored a report about order %s, which this engine never sent.",
                report.client_order_id,
            )
            return
        try:
            outcome = state.apply(report)
        except lifecycle.InvalidReport as exc:
            self.metrics.invalid_reports.inc()
            log.error("Skipped a report from %s that cannot be applied: %s.", self.venue.name, exc)
            return
        if report.filled_quantity > state.order.quantity:
            log.error(
                "Order %s is overfilled at %s: %s of %s (applied: the venue's fills are real).",
                report.client_order_id,
                self.venue.name,
                report.filled_quantity,
                state.order.quantity,
            )
        if outcome.stale:
            self.metrics.stale_reports.inc()
        if outcome.refused is not None:
            refused = outcome.refused
            self.metrics.invalid_transitions.labels(
                refused.current.value, refused.reported.value
            ).inc()
            log.warning("Refused a report from %s: %s.", self.venue.name, refused)
        if outcome.fill is not None:
            self._on_fill(outcome.fill)
        if outcome.update is not None:
            self._publish_update(outcome.update)

    def _on_fill(self, fill: Fill) -> None:
        assert self._log is not None
        record = orderlog.OrderFilled(ts_logged_ns=time.time_ns(), fill=fill)
        self._log.append(record)
        self.orders.unconfirmed[fill.fill_id] = fill
        self._send_fill(fill, self.orders.traces.get(fill.client_order_id))
        self.metrics.fills.inc()
        state = self.orders.states.get(fill.client_order_id)
        realized = ""
        if state is not None and state.arrival_mid:
            bps = slippage.realized_bps(fill.side, fill.price, state.arrival_mid)
            self.metrics.realized_slippage.labels(self._label(fill.symbol)).observe(bps)
            realized = f"; slippage {bps:.2f} bps"
        log.info(
            "Order %s filled %s %s at %s%s.",
            fill.client_order_id,
            fill.quantity,
            fill.symbol,
            fill.price,
            realized,
        )

    def _label(self, symbol: str) -> str:
        # Only configured symbols become label values: a label per unknown symbol is unbounded.
        return symbol if symbol in self._symbols else "other"

    def _publish_update(self, update: OrderUpdate, *, logged: bool = True) -> None:
        assert self._log is not None and self._publisher is not None
        now = time.time_ns()
        if logged:
            self._log.append(orderlog.OrderUpdated(ts_logged_ns=now, update=update))
        self._send_update(update, now)
        self.metrics.orders.labels(update.status.value, self.venue.name).inc()
        if update.status in lifecycle.TERMINAL:
            self._final_sent_at[update.client_order_id] = time.monotonic()
            if update.status is not OrderStatus.FILLED:
                log.info(
                    "Order %s is %s: %s.", update.client_order_id, update.status, update.reason
                )

    def _send_update(self, update: OrderUpdate, now_ns: int) -> None:
        assert self._publisher is not None
        trace_id = self.orders.traces.get(update.client_order_id)
        self._publisher.publish(topics.ORDER_UPDATES, update, ts_event_ns=now_ns, trace_id=trace_id)

    # --- fill confirmation ------------------------------------------------------------------

    def _send_fill(self, fill: Fill, trace_id: str | None = None) -> None:
        assert self._publisher is not None
        self._publisher.publish(topics.FILLS, fill, ts_event_ns=fill.ts_event_ns, trace_id=trace_id)
        self._fills_sent_at[fill.fill_id] = time.monotonic()

    def on_fill_booked(self, booked: FillBooked) -> None:
        if booked.fill_id not in self.orders.unconfirmed:
            return  # confirmed before (a confirmation of a re-sent fill), or not ours
        assert self._log is not None
        record = orderlog.FillConfirmed(ts_logged_ns=time.time_ns(), fill_id=booked.fill_id)
        self._log.append(record)
        self.orders.apply(record)
        self._fills_sent_at.pop(booked.fill_id, None)

    async def _resend_unconfirmed_fills(self) -> None:
        while True:
            await asyncio.sleep(RESEND_AFTER_S / 2)
            now = time.monotonic()
            for fill in list(self.orders.unconfirmed.values()):
                # Never sent by this process (logged before a restart) counts as due at once.
                if now - self._fills_sent_at.get(fill.fill_id, 0.0) >= RESEND_AFTER_S:
                    log.info("Fill %s is not confirmed yet; sending it again.", fill.fill_id)
                    self._send_fill(fill)
                    self.metrics.fills_resent.inc()

    # --- what it shows ----------------------------------------------------------------------

    def readiness(self) -> dict[str, bool]:
        return {
            **super().readiness(),
            "venue": self.venue.ready(),
            "orderlog": self._log is not None,
            "reconciled": self.reconciled,
            # Orders wait (then are refused) until the risk manager has said where its breaker
            # stands: not ready to take them before.
            "risk_state": self._risk_heard is not None
            and self._risk_heard.is_set()
            and not self._breaker_unknown,
        }

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "venue": self.spec.execution.venue,
            "breaker": self.breaker.value,
            "known_orders": len(self.orders.states),
            "open_orders": sorted(self.orders.open),
            "unresolved_orders": sorted(self._unresolved),
            "unknown_outcome_orders": self._unknown_outcome,
            "unconfirmed_fills": sorted(self.orders.unconfirmed),
            "venue_positions": {s: str(q) for s, q in sorted(self.venue_positions.items())},
            "algo_parents": {
                parent_id: f"{len(parent.sent)}/{len(parent.slices)} slices sent"
                for parent_id, parent in self.orders.parents.items()
                if not parent.done
            },
            "rate_limiter": {
                "waits": self.limiter.waits,
                "waited_s": round(self.limiter.waited_s, 3),
            },
        }
