"""Failover between a primary feed with a connection and a backup feed.

The backup starts when the primary has not been SUBSCRIBED and delivering for `takeover_after_s`
(down, reconnecting, FAILED for good, or subscribing again and again on a socket that stays mute:
see `connection.Connection.went_silent`), and is stopped when the primary is subscribed and
delivering data again: the primary is preferred whenever it works. Only the active feed's events
go downstream; the other's are counted in `standby_events` and discarded.

This class decides who speaks; it does not vouch for order. Across a switch the two feeds' clocks
and backlogs differ, so the service's `validation.Validator` (per symbol and kind: never backwards,
never the same event twice) is what guarantees no duplicated and no reordered events downstream:
events of the incoming feed that are not newer than what was already published are dropped as
`time_backwards` or `duplicate`, and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from components.core.events import Bar, Quote, Trade
from components.marketdata.connection import Connection

log = logging.getLogger(__name__)

Event = Trade | Quote | Bar
_QUEUE_SIZE = 10_000  # events in flight between a feed's task and the consumer


class Source(Protocol):
    name: str

    def stream(self) -> AsyncIterator[Event]: ...


class NetworkSource(Source, Protocol):
    connection: Connection


class FailoverFeed:
    """`primary` until it has been down for `takeover_after_s`, then `backup` until it is back."""

    def __init__(
        self,
        primary: NetworkSource,
        backup: Source,
        takeover_after_s: float,
        *,
        check_interval_s: float = 0.1,
        on_switch: Callable[[str], None] | None = None,
    ) -> None:
        self.primary = primary
        self.backup = backup
        self.takeover_after_s = takeover_after_s
        self.check_interval_s = check_interval_s
        self.name = f"{primary.name}+{backup.name}"
        self.active = primary.name
        self.switches = 0
        self.standby_events = 0
        self._on_switch = on_switch
        self._queue: asyncio.Queue[tuple[str, Event]] = asyncio.Queue(_QUEUE_SIZE)
        self._backup_task: asyncio.Task[None] | None = None

    @property
    def connection(self) -> Connection:
        return self.primary.connection

    @property
    def on_backup(self) -> bool:
        return self.active == self.backup.name

    async def stream(self) -> AsyncIterator[Event]:
        primary = asyncio.create_task(self._pump(self.primary), name="marketdata.primary")
        monitor = asyncio.create_task(self._watch(), name="marketdata.failover")
        try:
            while True:
                source, event = await self._queue.get()
                if source == self.active:
                    yield event
                else:
                    self.standby_events += 1
        finally:
            for task in (primary, monitor, self._backup_task):
                if task is not None:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task

    async def _pump(self, source: Source) -> None:
        async for event in source.stream():
            await self._queue.put((source.name, event))
        log.info("Feed %s has ended.", source.name)

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval_s)
            self.check()

    def check(self) -> None:
        """Take over or hand back, as the primary's connection says."""
        connection = self.primary.connection
        if not self.on_backup and connection.down_for_s() >= self.takeover_after_s:
            self._switch(self.backup.name, f"{self.primary.name} is {connection.state.value}")
            self._backup_task = asyncio.create_task(
                self._pump(self.backup), name="marketdata.backup"
            )
        elif self.on_backup and connection.delivering:
            self._switch(self.primary.name, f"{self.primary.name} is delivering again")
            if self._backup_task is not None:
                self._backup_task.cancel()
                self._backup_task = None

    def _switch(self, to: str, why: str) -> None:
        self.active = to
        self.switches += 1
        log.warning("Market data now comes from %s: %s.", to, why)
        if self._on_switch is not None:
            self._on_switch(to)

    def clock_ns(self) -> int:
        """Event time now: failover is for live feeds, on the wall clock."""
        return time.time_ns()
