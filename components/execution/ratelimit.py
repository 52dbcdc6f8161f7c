"""The token bucket every request to the venue passes through, and the pause a 429 imposes.

`rate_per_minute` tokens flow in at an even pace into a bucket holding at most `burst`; a request
takes one token, or waits until one has flowed in. Waiting requests queue in arrival order and
only the first of them watches the clock, so that a change of plan (a 429 arriving meanwhile)
reaches every request that has not gone yet, not only those that come later.

A 429 from the venue pauses every request until the time it names (`pause_until`: Alpaca's
`Retry-After` or `X-Ratelimit-Reset`), since the venue counts all of them against one limit. The
venue's window is spent then: what the bucket had saved up is void, and from the reset on the
queue drains at the bucket's rate, one request at a time, never as a burst (which would only draw
more 429s). The clock and the sleep are injected, so that tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

EPSILON = 1e-9  # float slack: a token that has all but flowed in counts as there


class TokenBucket:
    def __init__(
        self,
        rate_per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate_per_minute <= 0 or burst < 1:
            raise ValueError(
                f"rate_per_minute must be > 0 and burst >= 1 (were {rate_per_minute}, {burst})"
            )
        self.rate_per_s = rate_per_minute / 60
        self.burst = float(burst)
        self.clock = clock
        self.sleep = sleep
        self.tokens = float(burst)
        self._updated = clock()
        self._paused_until = float("-inf")
        self._turn = asyncio.Lock()  # FIFO: the request at its head is the one that waits
        self.waits = 0  # acquisitions that had to wait
        self.waited_s = 0.0
        self.pauses = 0  # 429 pauses that moved the reset later

    def _refill(self, now: float) -> None:
        if now > self._updated:
            self.tokens = min(self.burst, self.tokens + (now - self._updated) * self.rate_per_s)
            self._updated = now

    def wait_s(self) -> float:
        """Seconds until the next request may go (0: now), pause included."""
        now = self.clock()
        if now < self._paused_until:
            return self._paused_until - now
        self._refill(now)
        if self.tokens >= 1 - EPSILON:
            return 0.0
        return (1 - self.tokens) / self.rate_per_s

    async def acquire(self) -> float:
        """Wait for a token, behind every request that asked before; return how long it waited."""
        started = self.clock()
        async with self._turn:
            # Checked again after every sleep: a 429 may have paused everything meanwhile.
            while (wait_s := self.wait_s()) > 0:
                await self.sleep(wait_s)
            self.tokens -= 1
        waited_s = max(0.0, self.clock() - started)
        if waited_s > 0:
            self.waits += 1
            self.waited_s += waited_s
        return waited_s

    def pause_until(self, deadline: float) -> None:
        """Hold every request until `deadline` (on this bucket's clock): the venue said 429.
        From then on, requests go one at a time at the bucket's rate."""
        if deadline <= self._paused_until:
            return
        self._paused_until = deadline
        self.pauses += 1
        # Tokens saved up before the 429 are void: the venue's window is spent. One token is
        # there at the reset and the rest flow in at the rate.
        self.tokens = 1.0
        self._updated = max(self._updated, deadline)
