"""Failover: the backup takes over only after the primary has been down for the configured time,
hands back as soon as the primary is subscribed again, a standby feed's events are discarded,
and, with the validator downstream, nothing is duplicated or reordered across either switch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

from components.core.events import Trade
from components.marketdata.connection import Connection, ConnectionState
from components.marketdata.failover import FailoverFeed
from components.marketdata.validation import DropReason, Drops, Validator

S = ConnectionState


def _trade(ts: int, symbol: str = "AAPL") -> Trade:
    return Trade(symbol=symbol, price=Decimal(100) + ts, size=Decimal(1), ts_event_ns=ts)


class ScriptedSource:
    """Emits what the test puts in its queue; its connection is moved by the test."""

    def __init__(self, name: str, clock: FakeClock) -> None:
        self.name = name
        self.connection = Connection(name, clock)
        self.queue: asyncio.Queue[Trade] = asyncio.Queue()
        self.started = 0

    async def stream(self) -> AsyncIterator[Trade]:
        self.started += 1
        while True:
            yield await self.queue.get()

    def up(self) -> None:
        for state in (S.CONNECTING, S.CONNECTED, S.SUBSCRIBED):
            self.connection.move(state)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def _drain() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_failover_when_primary_down_then_backup_after_delay_and_hand_back() -> None:
    clock = FakeClock()
    primary, backup = ScriptedSource("primary", clock), ScriptedSource("backup", clock)
    feed = FailoverFeed(primary, backup, takeover_after_s=5, check_interval_s=3600)
    drops = Drops()
    validator = Validator(None, drops)
    downstream: list[Trade] = []

    async def consume() -> None:
        async for event in feed.stream():
            if validator.accept(event, now_ns=10**18):
                downstream.append(event)

    task = asyncio.create_task(consume())
    try:
        primary.up()
        await _drain()
        for ts in (1, 2, 3):
            primary.queue.put_nowait(_trade(ts))
        await _drain()

        primary.connection.move(S.RECONNECTING)
        clock.now += 4.9
        feed.check()
        assert feed.active == "primary" and backup.started == 0  # not down long enough
        clock.now += 0.1
        feed.check()
        await _drain()
        assert feed.active == "backup" and backup.started == 1
        # The backup overlaps what the primary already delivered: 2 and 3 again, then new.
        for ts in (2, 3, 4, 5, 6):
            backup.queue.put_nowait(_trade(ts))
        await _drain()

        primary.connection.move(S.CONNECTING)
        primary.connection.move(S.CONNECTED)
        primary.connection.move(S.SUBSCRIBED)
        feed.check()
        assert feed.active == "primary"
        backup.queue.put_nowait(_trade(7))  # late from the stopped backup: discarded
        # The primary's backlog repeats 5 and 6 and goes back to 4, then moves on.
        for ts in (4, 5, 6, 7, 8):
            primary.queue.put_nowait(_trade(ts))
        await _drain()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    stamps = [trade.ts_event_ns for trade in downstream]
    assert stamps == [1, 2, 3, 4, 5, 6, 7, 8]
    assert downstream == [_trade(ts) for ts in stamps]
    # backup: 2 backwards, 3 a duplicate; primary again: 4 and 5 backwards, 6 a duplicate
    assert drops.counts == {DropReason.TIME_BACKWARDS: 3, DropReason.DUPLICATE: 2}
    assert feed.switches == 2


async def test_failover_when_primary_failed_for_good_then_backup_stays() -> None:
    clock = FakeClock()
    primary, backup = ScriptedSource("primary", clock), ScriptedSource("backup", clock)
    feed = FailoverFeed(primary, backup, takeover_after_s=1, check_interval_s=3600)
    seen: list[Trade] = []

    async def consume() -> None:
        async for event in feed.stream():
            seen.append(event)

    task = asyncio.create_task(consume())
    try:
        await _drain()
        primary.connection.move(S.FAILED, "auth failed")
        clock.now += 1
        feed.check()
        backup.queue.put_nowait(_trade(1))
        primary.queue.put_nowait(_trade(2))  # standby: not forwarded
        await _drain()
        clock.now += 100
        feed.check()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == [_trade(1)]
    assert feed.active == "backup" and feed.standby_events == 1 and feed.switches == 1
