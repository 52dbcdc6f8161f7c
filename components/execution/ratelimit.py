"""The token bucket every request to the venue passes through, and the pause a 429 imposes.

`rate_per_minute` tokens flow in at an even pace into a bucket holding at most `burst`; a request
takes one token, or waits until one has flowed in. A 429 from the venue pauses every request
until the time it names (`pause_until`), since the venue counts all of them against one limit.
The clock and the sleep are injected, so that tests run on a fake clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
        self.waits = 0  # acquisitions that had to wait
        self.waited_s = 0.0

    def reserve(self) -> float:
        """Take a token now, possibly one not yet flowed in: the seconds to wait before using it.

        Reserving (the bucket may go negative) makes concurrent callers queue in order without a
        lock: each waits for its own token."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now
        self.tokens -= 1
        wait_s = -self.tokens / self.rate_per_s if self.tokens < 0 else 0.0
        return max(wait_s, self._paused_until - now)

    async def acquire(self) -> float:
        """Wait for a token; return how long it waited."""
        wait_s = self.reserve()
        if wait_s > 0:
            self.waits += 1
            self.waited_s += wait_s
            await self.sleep(wait_s)
        return wait_s

    def pause_until(self, deadline: float) -> None:
        """Hold every request until `deadline` (on this bucket's clock): the venue said 429."""
        self._paused_until = max(self._paused_until, deadline)
