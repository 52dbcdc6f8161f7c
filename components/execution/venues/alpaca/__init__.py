"""Alpaca (paper or live) as a venue: orders over REST (`client`), their fate from the
`trade_updates` stream (`stream`), read by `parsing`.

The stream is not trusted to tell everything, so the orders this venue follows (by client order
id) are polled over REST:
- while the stream is down, every `poll_interval_s` (reason `down`);
- once after every reconnect, since Alpaca does not replay what a client missed (`listening`);
- each working order that heard nothing for `silence_timeout_s` (`silence`): a socket can stay
  open and answer every ping while it sends nothing, or drop some events and deliver others, so
  silence is judged per order, from its last update (report, ack or poll), not from the last
  frame of the stream. When such a poll finds an order changed that the stream never reported,
  the stream is reconnected (reason `silence`); a poll that finds nothing new leaves it be (a
  resting order may hear nothing for hours: it costs one request per `silence_timeout_s`).
Reports are cumulative, so an execution seen by both the stream and a poll is one fill; the same
execution on the stream twice (Alpaca's `execution_id`) is reported once. A body or event that
cannot be read is a `parsing.ParseError` (a `VenueError`): the request fails as "outcome
unknown", an event is skipped; both are logged and counted, and no loop stops.
Every request, the venue's own polls included, waits for the engine's rate limiter (`pace`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import prometheus_client as prom

from components.core.config import ExecutionConfig
from components.core.events import Order, OrderStatus
from components.execution.lifecycle import TERMINAL
from components.execution.venues.alpaca import parsing, stream
from components.execution.venues.alpaca.client import AlpacaClient
from components.execution.venues.alpaca.metrics import AlpacaMetrics
from components.execution.venues.base import OrderRefused, Report, Venue, VenueError
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)
RECONNECT_MAX_S = 30.0
EXECUTIONS_KEPT = 10_000  # execution ids remembered to drop a duplicated event


class AlpacaVenue(Venue):
    name = "alpaca"

    def __init__(
        self,
        base_url: str,
        credentials: AlpacaCredentials,
        *,
        timeout_s: float = 5.0,
        poll_interval_s: float = 2.0,
        silence_timeout_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.client = AlpacaClient(base_url, credentials, timeout_s)
        self.poll_interval_s = poll_interval_s
        self.silence_timeout_s = silence_timeout_s
        self.streaming = False
        self.following: set[str] = set()  # client ids of orders not terminal yet
        self.metrics = AlpacaMetrics(prom.CollectorRegistry(), self.name)
        self.stream = stream.TradeUpdates(
            self.client.session, base_url, credentials, auth_timeout_s=timeout_s, clock=clock
        )
        self._clock = clock
        # When each followed order was last heard of (report, ack, poll): its silence clock.
        self._heard_s: dict[str, float] = {}
        # What this venue last reported of each followed order, to tell a poll that found news.
        self._last_seen: dict[str, tuple[OrderStatus, Decimal]] = {}
        self._executions: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._aborted = False  # the current session was ended for silence
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
            silence_timeout_s=alpaca.silence_timeout_s,
        )

    def register_metrics(self, registry: prom.CollectorRegistry) -> None:
        self.metrics = AlpacaMetrics(registry, self.name)

    async def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._listen(), name="alpaca.trade_updates"),
            asyncio.create_task(self._poll_while_down(), name="alpaca.poll"),
            asyncio.create_task(self._watch_silence(), name="alpaca.silence"),
        ]

    # --- requests ---------------------------------------------------------------------------

    async def _request(self, method: str, path: str, **options: Any) -> Any:
        return await self.client.request(method, path, **options)

    def _read(self, endpoint: str, body: Any, parser: Callable[[Any], Any]) -> Any:
        """`parser(body)`, or a `ParseError` naming `endpoint` and an excerpt of the body."""
        try:
            return parsing.read(endpoint, body, parser)
        except parsing.ParseError as exc:
            self.metrics.malformed.labels(self.name, endpoint).inc()
            log.error("Could not read the answer of %s: %s.", self.name, exc)
            raise

    async def submit(self, order: Order) -> Report:
        self._follow(order.client_order_id)  # if the answer is lost, a poll finds it
        body = await self._request("POST", "/v2/orders", body=parsing.order_body(order))
        ack: Report = self._read("POST /v2/orders", body, parsing.report)
        if ack.status not in TERMINAL:
            self._follow(order.client_order_id)  # a poll meanwhile may have dropped it
        self._seen(ack)
        return ack

    async def get_order(self, client_order_id: str) -> Report | None:
        found, _ = await self._lookup(client_order_id)
        return found

    async def _lookup(self, client_order_id: str) -> tuple[Report | None, bool]:
        """The venue's report of the order (None: it has none), and whether it is news."""
        body = await self._request(
            "GET",
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            lookup=True,
        )
        if body is None:
            self._unfollow(client_order_id)
            return None, False
        found: Report = self._read("GET /v2/orders:by_client_order_id", body, parsing.report)
        if found.client_order_id != client_order_id:
            self.metrics.malformed.labels(self.name, "GET /v2/orders:by_client_order_id").inc()
            raise parsing.ParseError(
                f"asked for order {client_order_id}, got {found.client_order_id}",
                endpoint="GET /v2/orders:by_client_order_id",
            )
        if found.status in TERMINAL:
            self._unfollow(client_order_id)
        else:
            self._follow(client_order_id)
        return found, self._seen(found)

    async def cancel(self, client_order_id: str) -> None:
        found = await self._request(
            "GET",
            "/v2/orders:by_client_order_id",
            params={"client_order_id": client_order_id},
            lookup=True,
        )
        if found is None:
            return
        venue_id = self._read("GET /v2/orders:by_client_order_id", found, parsing.venue_order_id)
        # Not cancelable any more (422) means filled or closed: the lookup below says which.
        with contextlib.suppress(OrderRefused):
            await self._request("DELETE", f"/v2/orders/{venue_id}", lookup=True)
        now = await self.get_order(client_order_id)
        if now is not None:
            self.reports.put_nowait(now)

    async def open_orders(self) -> list[Report]:
        body = await self._request("GET", "/v2/orders", params={"status": "open", "limit": "500"})
        reports: list[Report] = self._read("GET /v2/orders", body, parsing.reports)
        return reports

    async def positions(self) -> dict[str, Decimal]:
        body = await self._request("GET", "/v2/positions")
        held: dict[str, Decimal] = self._read("GET /v2/positions", body, parsing.positions)
        return held

    async def account(self) -> dict[str, Any]:
        body = await self._request("GET", "/v2/account")
        account: dict[str, Any] = self._read("GET /v2/account", body, parsing.account)
        return account

    # --- what the venue pushes --------------------------------------------------------------

    async def _listen(self) -> None:
        failures = 0

        async def listening() -> None:
            nonlocal failures
            self.streaming, failures = True, 0
            self.metrics.polls.labels(self.name, "listening").inc()
            await self._poll_following()  # what happened while away

        while True:
            self._aborted = False
            reason = "closed"
            try:
                async for event in self.stream.events(listening):
                    self._on_event(event)
            except (TimeoutError, OSError, VenueError, ValueError) as exc:
                reason = "error"
                log.warning("The trade_updates stream failed: %s.", exc or type(exc).__name__)
            except Exception as exc:  # aiohttp's WSServerHandshakeError and kin
                reason = "error"
                log.warning("The trade_updates stream failed: %s.", type(exc).__name__)
            else:
                log.warning("The trade_updates stream closed.")
            if self._aborted:
                reason = "silence"
            self.streaming = False
            self.metrics.reconnects.labels(self.name, reason).inc()
            failures += 1
            await asyncio.sleep(min(RECONNECT_MAX_S, 0.05 * 2**failures))

    def _on_event(self, data: Any) -> None:
        try:
            event = parsing.read("trade_updates", data, parsing.trade_update)
        except parsing.ParseError as exc:
            self.metrics.malformed.labels(self.name, "trade_updates").inc()
            self.metrics.skipped.labels(self.name, "malformed").inc()
            log.warning("Skipped a trade_updates event: %s.", exc)
            return
        if event.execution_id is not None:
            if event.execution_id in self._executions:
                self.metrics.skipped.labels(self.name, "duplicate").inc()
                log.info(
                    "Skipped execution %s of order %s: reported before.",
                    event.execution_id,
                    event.report.client_order_id,
                )
                return
            self._executions[event.execution_id] = None
            if len(self._executions) > EXECUTIONS_KEPT:
                self._executions.popitem(last=False)
        report = event.report
        if report.status in TERMINAL:
            self._unfollow(report.client_order_id)
        else:
            self._follow(report.client_order_id)
        self._seen(report)
        self.reports.put_nowait(report)

    def _follow(self, client_order_id: str) -> None:
        self.following.add(client_order_id)
        self._heard_s[client_order_id] = self._clock()

    def _unfollow(self, client_order_id: str) -> None:
        self.following.discard(client_order_id)
        self._heard_s.pop(client_order_id, None)

    def _seen(self, report: Report) -> bool:
        """Remember what was last reported of this order; True if it is news."""
        now = (report.status, report.filled_quantity)
        before = self._last_seen.get(report.client_order_id)
        if report.status in TERMINAL:
            self._last_seen.pop(report.client_order_id, None)
        else:
            self._last_seen[report.client_order_id] = now
        return before != now

    async def _poll_while_down(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if not self.streaming and self.following:
                self.metrics.polls.labels(self.name, "down").inc()
                await self._poll_following()

    async def _watch_silence(self) -> None:
        """Poll each working order not heard of for `silence_timeout_s` while the stream is up;
        if the poll finds what the stream should have said, reconnect the stream."""
        while True:
            await asyncio.sleep(min(self.poll_interval_s, self.silence_timeout_s / 4))
            if not self.streaming:
                continue  # `_poll_while_down` has them
            now_s = self._clock()
            quiet = sorted(
                cid
                for cid in self.following
                if now_s - self._heard_s.get(cid, now_s) >= self.silence_timeout_s
            )
            if not quiet:
                continue
            self.metrics.polls.labels(self.name, "silence").inc()
            log.warning(
                "%d working order(s) at %s heard nothing for %g s (last trade_updates frame "
                "%.1f s ago); polling them (silence).",
                len(quiet),
                self.name,
                self.silence_timeout_s,
                now_s - self.stream.last_data_s,
            )
            news = await self._poll_following(quiet)
            if news and self.streaming:
                log.warning(
                    "The trade_updates stream is open but missed %d update(s); reconnecting it "
                    "(silence).",
                    news,
                )
                self._aborted = True
                await self.stream.abort()

    async def _poll_following(self, client_order_ids: list[str] | None = None) -> int:
        """Look up the followed orders (or these) and report what the venue says; how many of
        them were news."""
        news = 0
        for client_order_id in client_order_ids or sorted(self.following):
            if self.pace is not None:
                await self.pace()
            try:
                found, is_news = await self._lookup(client_order_id)
            except VenueError as exc:
                log.warning("Could not poll order %s: %s.", client_order_id, exc)
                if client_order_id in self._heard_s:
                    self._heard_s[client_order_id] = self._clock()  # again a timeout later
                continue
            if found is not None:
                news += is_news
                self.reports.put_nowait(found)
        return news

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
