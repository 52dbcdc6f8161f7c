"""How long to wait before trying a request again: exponential backoff with full jitter, capped.

Attempt n (from 0) waits a uniform random time in [0, min(cap, initial x 2^n)]: the growth backs
off from a venue in trouble, the jitter keeps many clients (or many orders) from retrying in step,
and the cap bounds the wait. A venue that says when to come back (429 with `Retry-After` or
`X-Ratelimit-Reset`) is obeyed instead.
"""

from __future__ import annotations

import dataclasses
import random

from components.core.config import RetryConfig


@dataclasses.dataclass
class Backoff:
    initial_s: float
    cap_s: float
    max_attempts: int
    rng: random.Random = dataclasses.field(default_factory=random.Random)

    @classmethod
    def from_config(cls, config: RetryConfig, rng: random.Random | None = None) -> Backoff:
        return cls(
            config.initial_backoff_ms / 1000,
            config.max_backoff_ms / 1000,
            config.max_attempts,
            rng or random.Random(),
        )

    def ceiling(self, attempt: int) -> float:
        """The largest delay after failed attempt `attempt` (0-based)."""
        return min(self.cap_s, self.initial_s * 2 ** min(attempt, 60))

    def delay(self, attempt: int, retry_after_s: float | None = None) -> float:
        """Seconds to wait after failed attempt `attempt`; the venue's own figure wins."""
        if retry_after_s is not None:
            return max(0.0, retry_after_s)
        return self.rng.uniform(0, self.ceiling(attempt))
