"""Every request the engine makes to its venue goes through here: one shared rate limiter,
retries with backoff, and the submit that never sends an order twice.

Submit, for one order under its one client order id:
- 429: the venue processed nothing; every request waits until the venue's reset time.
- 5xx, a dropped connection, no answer: the venue may have the order. Ask it by client order id
  before sending again; if it has the order, that is the answer.
- "client order id must be unique": the order is there; fetch it.
- 403/422: refused for good (`OrderRefused`), reported as a rejection.
After `max_attempts` the submit gives up with `SubmitFailed` (the venue said it does not have the
order); if the venue cannot even be asked, the error of the lookup is raised instead, and the
order stays unresolved until the engine can ask again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import prometheus_client as prom

from components.core.events import Order
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.base import (
    DuplicateClientOrderId,
    OutcomeUnknown,
    RateLimited,
    Report,
    Venue,
    VenueError,
    VenueUnavailable,
)

log = logging.getLogger(__name__)
T = TypeVar("T")


class SubmitFailed(VenueError):
    """Every attempt failed, and the venue said after the last one that it does not have the
    order: safe to report it rejected."""


class GatewayMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.registry = registry
        self.retries = prom.Counter(
            "execution_retries",
            "Venue requests tried again, by what went wrong.",
            ["reason"],
            registry=registry,
        )
        self.limiter_waits = prom.Counter(
            "execution_rate_limiter_waits",
            "Venue requests that waited for the rate limiter.",
            registry=registry,
        )
        self.limiter_wait_seconds = prom.Counter(
            "execution_rate_limiter_wait_seconds",
            "Time venue requests spent waiting for the rate limiter.",
            registry=registry,
        )
        self.already_there = prom.Counter(
            "execution_submits_found_at_venue",
            "Submits answered by finding the order at the venue (after a timeout or a "
            "duplicate client order id) instead of sending it again.",
            registry=registry,
        )


def _reason(exc: Exception) -> str:
    if isinstance(exc, RateLimited):
        return "rate_limited"
    if isinstance(exc, OutcomeUnknown):
        return "timeout"
    return "unavailable"


class Gateway:
    def __init__(
        self,
        venue: Venue,
        limiter: TokenBucket,
        backoff: Backoff,
        metrics: GatewayMetrics,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.venue = venue
        self.limiter = limiter
        self.backoff = backoff
        self.metrics = metrics
        # The venue's own metrics (its stream, its polls) go where the gateway's go.
        venue.register_metrics(metrics.registry)
        self.sleep = sleep
        self.clock = clock

    async def _acquire(self) -> None:
        waited_s = await self.limiter.acquire()
        if waited_s > 0:
            self.metrics.limiter_waits.inc()
            self.metrics.limiter_wait_seconds.inc(waited_s)

    async def _back_off(self, what: str, attempt: int, exc: VenueError) -> None:
        """Count the failure and wait before attempt `attempt + 1`."""
        retry_after = exc.retry_after_s if isinstance(exc, VenueUnavailable) else None
        delay_s = self.backoff.delay(attempt, retry_after)
        self.metrics.retries.labels(_reason(exc)).inc()
        log.warning(
            "While %s at %s: %s; attempt %d failed, retry in %.3f s.",
            what,
            self.venue.name,
            exc,
            attempt + 1,
            delay_s,
        )
        if isinstance(exc, RateLimited):
            # The limit is the venue's, for every request: the limiter holds them all until the
            # reset and then releases them at its rate; this one waits there with the others.
            self.limiter.pause_until(self.clock() + delay_s)
            return
        await self.sleep(delay_s)

    async def request(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """A request that is safe to repeat (a query or a cancel): retried on any transient
        failure, up to `max_attempts`, then the last error is raised."""
        attempt = 0
        while True:
            await self._acquire()
            try:
                return await call()
            except (VenueUnavailable, OutcomeUnknown) as exc:
                if attempt + 1 >= self.backoff.max_attempts:
                    raise
                await self._back_off(what, attempt, exc)
            attempt += 1

    async def find(self, client_order_id: str) -> Report | None:
        return await self.request(
            f"looking up order {client_order_id}", lambda: self.venue.get_order(client_order_id)
        )

    async def submit(self, order: Order) -> Report:
        """Send `order` once: the venue's acknowledgement, found or fresh."""
        client_order_id = order.client_order_id
        what = f"submitting order {client_order_id} ({order.symbol} {order.side} {order.quantity})"
        attempt = 0
        while True:
            await self._acquire()
            try:
                return await self.venue.submit(order)
            except DuplicateClientOrderId:
                found = await self.find(client_order_id)
                if found is not None:
                    self.metrics.already_there.inc()
                    log.info("Order %s was already at %s.", client_order_id, self.venue.name)
                    return found
                failure: VenueError = VenueUnavailable("duplicate client order id, yet not found")
            except RateLimited as exc:
                failure = exc  # not processed: nothing to look up
            except (VenueUnavailable, OutcomeUnknown) as exc:
                failure = exc
                found = await self.find(client_order_id)
                if found is not None:
                    self.metrics.already_there.inc()
                    log.info(
                        "Order %s reached %s despite %s.", client_order_id, self.venue.name, exc
                    )
                    return found
            if attempt + 1 >= self.backoff.max_attempts:
                # After a 429 the venue processed nothing; otherwise it was just asked.
                raise SubmitFailed(f"{what}: gave up after {attempt + 1} attempts: {failure}")
            await self._back_off(what, attempt, failure)
            attempt += 1
