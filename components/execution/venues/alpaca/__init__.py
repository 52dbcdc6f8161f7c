"""Alpaca (paper or live) as a venue: orders over REST (`client`), their fate from the
`trade_updates` stream (`stream`), read by `parsing`.

While the stream is down, and once after every reconnect (Alpaca does not replay what a client
missed), the orders this venue follows are polled by client order id every `poll_interval_s`.
Reports are cumulative, so an execution seen by both the stream and a poll is one fill.
Every request, the venue's own polls included, waits for the engine's rate limiter (`pace`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from decimal import Decimal
from typing import Any

from components.core.config import ExecutionConfig
from components.core.events import Order
from components.execution.lifecycle import TERMINAL
from components.execution.venues.alpaca import parsing, stream
from components.execution.venues.alpaca.client import AlpacaClient
from components.execution.venues.base import OrderRefused, Report, Venue, VenueError
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)
RECONNECT_MAX_S = 30.0


class AlpacaVenue(Venue):
    name = "alpaca"

    def __init__(
        self,
        base_url: str,
        credentials: AlpacaCredentials,
        *,
        timeout_s: float = 5.0,
        poll_interval_s: float = 2.0,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.client = AlpacaClient(base_url, credentials, timeout_s)
        self._credentials = credentials
        self.poll_interval_s = poll_interval_s
        self.streaming = False
        self.following: set[str] = set()  # client ids of orders not terminal yet
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_config(cls, config: ExecutionConfig) -> AlpacaVenue:
        alpaca = config.alpaca
        base_url = alpaca.live_url if config.venue == "alpaca-live" else alpaca.paper_url
        return cls(
            base_url,
            AlpacaCredentials.from_env(),
            timeout_s=alpaca.request_timeout_s,
            poll_interval_s=alpaca.poll_interval_s,
        )

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="alpaca.trade_updates"),
            asyncio.create_task(self._poll_while_down(), name="alpaca.poll"),
        ]

    # --- requests ---------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **options: Any) -> Any:
        return await self.client.request(method, path, **options)

    async def submit(self, order: Order) -> Report:
        body = await self._request("POST", "/v2/orders", body=parsing.order_body(order))
        self.following.add(order.client_order_id)
        return parsing.report(body)

    async def get_order(self, client_order_id: str) -> Report | None:
        body = await self._request(
            "GET",
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            lookup=True,
        )
        if body is None:
            return None
        found = parsing.report(body)
        if found.status not in TERMINAL:
            self.following.add(client_order_id)
        return found

    async def cancel(self, client_order_id: str) -> None:
        found = await self._request(
            "GET",
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            lookup=True,
        )
        if found is None:
            return
        # Not cancelable any more (422) means filled or closed: the lookup below says which.
        with contextlib.suppress(OrderRefused):
            await self._request("DELETE", f"/v2/orders/{found['id']}", lookup=True)
        now = await self.get_order(client_order_id)
        if now is not None:
            self.reports.put_nowait(now)

    async def open_orders(self) -> list[Report]:
        body = await self._request("GET", "/v2/orders", params={"status": "open", "limit": "500"})
        return [parsing.report(order) for order in body or []]

    async def positions(self) -> dict[str, Decimal]:
        return parsing.positions(await self._request("GET", "/v2/positions"))

    async def account(self) -> dict[str, Any]:
        body: dict[str, Any] = await self._request("GET", "/v2/account")
        return body

    # --- what the venue pushes --------------------------------------------------------------

    async def _listen(self) -> None:
        failures = 0

        async def listening() -> None:
            nonlocal failures
            self.streaming, failures = True, 0
            await self._poll_following()  # what happened while away

        while True:
            try:
                events = stream.trade_updates(
                    self.client.session(), self.base_url, self._credentials, listening
                )
                async for event in events:
                    self._on_event(event)
            except (TimeoutError, OSError, VenueError, ValueError) as exc:
                log.warning("The trade_updates stream failed: %s.", exc)
            except Exception as exc:  # aiohttp's WSServerHandshakeError and kin
                log.warning("The trade_updates stream failed: %s.", type(exc).__name__)
            else:
                log.warning("The trade_updates stream closed.")
            self.streaming = False
            failures += 1
            await asyncio.sleep(min(RECONNECT_MAX_S, 0.05 * 2**failures))

    def _on_event(self, event: dict[str, Any]) -> None:
        try:
            report = parsing.report(event["order"], event)
        except (KeyError, TypeError, parsing.ParseError) as exc:
            log.warning("Skipped a trade_updates event that says no order: %s.", exc)
            return
        if report.status in TERMINAL:
            self.following.discard(report.client_order_id)
        self.reports.put_nowait(report)

    async def _poll_while_down(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if not self.streaming:
                await self._poll_following()

    async def _poll_following(self) -> None:
        for client_order_id in sorted(self.following):
            if self.pace is not None:
                await self.pace()
            try:
                found = await self.get_order(client_order_id)
            except VenueError as exc:
                log.warning("Could not poll order %s: %s.", client_order_id, exc)
                continue
            if found is not None:
                if found.status in TERMINAL:
                    self.following.discard(client_order_id)
                self.reports.put_nowait(found)

    def ready(self) -> bool:
        return bool(self._tasks) and not any(task.done() for task in self._tasks)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        await self.client.close()
