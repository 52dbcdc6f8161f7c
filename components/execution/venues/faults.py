"""A venue wrapped in faults, for tests and the fault campaign: what a real venue does on a bad day.

`FaultyVenue(venue, faults, rng)` (`faults`: `SimulatedFaultsConfig`, the probability of each
fault per request or report) fails requests before they reach the venue (429 bursts, 5xx,
dropped connections), accepts an order and then never answers (accept-then-timeout), and
delivers reports twice or out of order. Every fault is drawn from the seeded `rng`, so a failing
run can be replayed, and counted in `injected`.
"""

from __future__ import annotations

import asyncio
import collections
import random
from decimal import Decimal
from pathlib import Path

from components.core.config import SimulatedFaultsConfig as Faults
from components.core.events import BookSnapshot, Order, Quote, Trade
from components.execution.venues.base import (
    OutcomeUnknown,
    RateLimited,
    Report,
    Venue,
    VenueUnavailable,
)


class FaultyVenue(Venue):
    def __init__(self, venue: Venue, faults: Faults, rng: random.Random) -> None:
        super().__init__()
        self.venue = venue
        self.name = venue.name  # type: ignore[misc]
        self.faults = faults
        self.rng = rng
        self.injected: collections.Counter[str] = collections.Counter()
        self._burst_left = 0
        self._pump: asyncio.Task[None] | None = None

    def _before_request(self) -> None:
        f = self.faults
        if self._burst_left or self.rng.random() < f.rate_limit:
            self._burst_left = (self._burst_left or f.burst) - 1
            self.injected["rate_limit"] += 1
            raise RateLimited("HTTP 429 (injected)", retry_after_s=f.retry_after_s)
        if self.rng.random() < f.server_error:
            self.injected["server_error"] += 1
            raise VenueUnavailable("HTTP 503 (injected)")
        if self.rng.random() < f.dropped:
            self.injected["dropped"] += 1
            raise VenueUnavailable("connection dropped (injected)")

    def keep_state_in(self, directory: Path) -> None:
        self.venue.keep_state_in(directory)

    async def start(self) -> None:
        await self.venue.start()
        self._pump = asyncio.create_task(self._forward())

    async def _forward(self) -> None:
        held: Report | None = None
        while True:
            report = await self.venue.reports.get()
            if held is None and self.rng.random() < self.faults.reorder_report:
                self.injected["reorder_report"] += 1
                held = report
                continue
            self.reports.put_nowait(report)
            if self.rng.random() < self.faults.duplicate_report:
                self.injected["duplicate_report"] += 1
                self.reports.put_nowait(report)
            if held is not None:
                self.reports.put_nowait(held)
                held = None

    async def submit(self, order: Order) -> Report:
        self._before_request()
        ack = await self.venue.submit(order)
        if self.rng.random() < self.faults.accept_then_timeout:
            self.injected["accept_then_timeout"] += 1
            raise OutcomeUnknown("no answer within the timeout (injected)")
        return ack

    async def get_order(self, client_order_id: str) -> Report | None:
        self._before_request()
        return await self.venue.get_order(client_order_id)

    async def cancel(self, client_order_id: str) -> None:
        self._before_request()
        await self.venue.cancel(client_order_id)

    async def open_orders(self) -> list[Report]:
        self._before_request()
        return await self.venue.open_orders()

    async def positions(self) -> dict[str, Decimal]:
        self._before_request()
        return await self.venue.positions()

    def on_quote(self, quote: Quote) -> None:
        self.venue.on_quote(quote)

    def on_trade(self, trade: Trade) -> None:
        self.venue.on_trade(trade)

    def on_book(self, book: BookSnapshot) -> None:
        self.venue.on_book(book)

    def ready(self) -> bool:
        return self.venue.ready()

    async def close(self) -> None:
        if self._pump is not None:
            self._pump.cancel()
        await self.venue.close()
