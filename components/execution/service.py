"""The execution engine: sends every approved order to the venue exactly once, and reports back.

For each `Order` on `risk.order` it checks that the id is new (the order log remembers every id
across restarts), appends the order to the log, acknowledges it (`pending_new`, which tells the
risk manager that execution owns it), then submits it. What the venue reports is logged and
published: updates on `exec.order`, fills on `exec.fill`, under the order's trace id.

Fills are re-sent until the risk manager confirms it booked them (`FillBooked` on
`risk.fill_booked`): publish/subscribe drops what nobody is connected to receive, and a fill must
not be lost to a restarting broker or risk manager. The confirmations are logged too, so a
restarted engine re-sends only what was never confirmed.

On shutdown it cancels whatever is still working at the venue and publishes the cancels, so a
stopped engine leaves no orders behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import Decimal
from typing import Any

import prometheus_client as prom

from components.core import topics, wire
from components.core.events import Fill, FillBooked, Order, OrderStatus, OrderUpdate, Quote
from components.execution import orderlog
from components.execution.venues.base import Report, Venue
from components.execution.venues.simulated import SimulatedExchange
from components.runtime.bus import Publisher, Subscriber
from components.runtime.component import Component

log = logging.getLogger(__name__)

APPROVAL_EXPIRED = "APPROVAL_EXPIRED"
RESEND_AFTER_S = 1.0  # a fill not confirmed this long after it was sent is sent again


class ExecutionMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.orders = prom.Counter(
            "execution_orders",
            "Order updates published, by status.",
            ["status"],
            registry=registry,
        )
        self.fills = prom.Counter("execution_fills", "Fills published.", registry=registry)
        self.fills_resent = prom.Counter(
            "execution_fills_resent",
            "Fills sent again because the risk manager had not confirmed them.",
            registry=registry,
        )
        self.duplicates = prom.Counter(
            "execution_duplicate_orders",
            "Orders received again under a known client order id, and dropped.",
            registry=registry,
        )
        self.tick_to_order = prom.Histogram(
            "execution_tick_to_order_seconds",
            "From the market data that caused an order to its arrival at execution.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )


class ExecutionEngine(Component):
    name = "execution"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = ExecutionMetrics(self.registry)
        self.venue: Venue = SimulatedExchange(self.spec.execution.simulated)
        self.orders = orderlog.Orders()
        self._log: orderlog.OrderLog | None = None
        self._publisher: Publisher | None = None
        self._traces: dict[str, str] = {}  # client order id -> trace id of its `Order`
        self._fills_sent_at: dict[str, float] = {}  # fill id -> monotonic time of the last send

    def restore(self) -> None:
        """Open the order log under the data directory: every id in it is spent."""
        path = self.settings.data_dir / orderlog.ORDER_LOG_NAME
        self._log, self.orders = orderlog.OrderLog.restore(path)
        if self.orders.open:
            # The simulated venue forgot them with the last process; a real venue is asked later.
            log.warning(
                "%d order(s) were still open when execution last stopped: %s.",
                len(self.orders.open),
                ", ".join(sorted(self.orders.open)),
            )
        log.info("Execution restored %d known order id(s) from %s.", len(self.orders.known), path)

    async def run(self) -> None:
        if self._log is None:
            self.restore()
        self._publisher = self.bus.publisher()
        subscriber = self.bus.subscriber(
            [topics.APPROVED_ORDERS, topics.QUOTES, topics.FILLS_BOOKED]
        )
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(self._consume(subscriber))
            tasks.create_task(self._forward_reports(self.venue))
            tasks.create_task(self._resend_unconfirmed_fills())

    async def close(self) -> None:
        await self.venue.cancel_all()
        while not self.venue.reports.empty():
            report = self.venue.reports.get_nowait()
            if self._publisher is not None and self._log is not None:
                self.on_report(report)
        await self.venue.close()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def _consume(self, subscriber: Subscriber) -> None:
        async for envelope in subscriber:
            payload = envelope.payload
            if isinstance(payload, Quote):
                self.venue.on_quote(payload)
            elif isinstance(payload, Order):
                await self.on_order(payload, envelope)
            elif isinstance(payload, FillBooked):
                self.on_fill_booked(payload)

    async def _forward_reports(self, venue: Venue) -> None:
        while True:
            self.on_report(await venue.reports.get())

    async def on_order(self, order: Order, envelope: wire.Envelope) -> None:
        assert self._log is not None
        now = time.time_ns()
        if order.ts_origin_ns > 0 and now >= order.ts_origin_ns:
            self.metrics.tick_to_order.observe((now - order.ts_origin_ns) / 1e9)
        client_order_id = order.client_order_id
        if client_order_id in self.orders.known:
            self.metrics.duplicates.inc()
            log.warning("Order %s was received before; dropped, not sent again.", client_order_id)
            return
        self._log.append(
            orderlog.OrderReceived(ts_logged_ns=now, order=order, trace_id=envelope.trace_id)
        )
        self.orders.known.add(client_order_id)
        self.orders.open[client_order_id] = order
        self._traces[client_order_id] = envelope.trace_id

        refusal = self._refusal(order, now)
        if refusal:
            log.warning("Refused order %s: %s.", client_order_id, refusal)
            self.on_report(_update(order, OrderStatus.REJECTED, refusal))
            return
        self.on_report(_update(order, OrderStatus.PENDING_NEW))
        await self.venue.submit(order)
        log.info(
            "Sent order %s (%s %s %s) to %s.",
            client_order_id,
            order.side,
            order.quantity,
            order.symbol,
            self.venue.name,
        )

    def _refusal(self, order: Order, now_ns: int) -> str:
        """Why `order` must not be sent, or "": halted, or older than its approval lives."""
        if self.spec.halted:
            return "HALTED: by=spec.halted"
        age_ms = (now_ns - order.ts_event_ns) / 1e6
        if age_ms > self.spec.risk.approval_timeout_ms:
            # The risk manager has expired (or will expire) this approval: sending it now would
            # make a position the risk manager no longer counts as pending.
            return (
                f"{APPROVAL_EXPIRED}: age_ms={age_ms:.0f}, "
                f"timeout_ms={self.spec.risk.approval_timeout_ms}"
            )
        return ""

    def on_report(self, report: Report) -> None:
        """Log, then publish, one report of the venue (or of the engine's own refusals)."""
        assert self._log is not None and self._publisher is not None
        now = time.time_ns()
        trace_id = self._traces.get(report.client_order_id)
        if isinstance(report, Fill):
            record = orderlog.OrderFilled(ts_logged_ns=now, fill=report)
            self._log.append(record)
            self.orders.apply(record)
            self._send_fill(report, trace_id)
            self.metrics.fills.inc()
            log.info(
                "Order %s filled %s %s at %s.",
                report.client_order_id,
                report.quantity,
                report.symbol,
                report.price,
            )
            return
        self._log.append(orderlog.OrderUpdated(ts_logged_ns=now, update=report))
        self.orders.apply(orderlog.OrderUpdated(ts_logged_ns=now, update=report))
        self._publisher.publish(topics.ORDER_UPDATES, report, ts_event_ns=now, trace_id=trace_id)
        self.metrics.orders.labels(report.status.value).inc()
        if report.status in orderlog.TERMINAL:
            self._traces.pop(report.client_order_id, None)
            if report.status is not OrderStatus.FILLED:
                log.info(
                    "Order %s is %s: %s.", report.client_order_id, report.status, report.reason
                )

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

    def readiness(self) -> dict[str, bool]:
        return {
            **super().readiness(),
            "venue": self.venue.ready(),
            "orderlog": self._log is not None,
        }

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "venue": self.spec.execution.venue,
            "known_orders": len(self.orders.known),
            "open_orders": sorted(self.orders.open),
            "unconfirmed_fills": sorted(self.orders.unconfirmed),
        }


def _update(order: Order, status: OrderStatus, reason: str = "") -> OrderUpdate:
    return OrderUpdate(
        client_order_id=order.client_order_id,
        venue_order_id=None,
        symbol=order.symbol,
        status=status,
        filled_quantity=Decimal(0),
        avg_fill_price=None,
        ts_event_ns=time.time_ns(),
        reason=reason,
    )
