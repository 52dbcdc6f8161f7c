"""The circuit breaker: a state machine (as data) and the monitors that decide when it trips.

    closed ──trip──▶ open ──recovery wait──▶ half_open ──test passed──▶ closed
                      ▲                          │
                      └────────── trip ──────────┘

Triggers: the session's loss reaching `max_daily_loss`, equity falling `max_drawdown_pct` below
its peak within a window (rapid drawdown), a symbol's mid moving `max_move_pct` high-to-low within
a window (volatility), a position that differs from the venue's after reconciliation (venue
drift, under `execution.drift_policy: halt`), and a manual trip. A daily-loss trip waits for the
next session before its test period; a manual or venue-drift trip waits for a manual reset (the
books must be put right by someone; time does not do it); an authenticated manual reset closes
the breaker from any state.

The breaker only proposes `BreakerChanged` records; the risk manager logs each one (fsynced) and
then applies it, so its state survives restarts. The monitors are memory only: after a restart
they watch the market afresh.
"""

from __future__ import annotations

import collections
import dataclasses
from decimal import Decimal
from enum import StrEnum

from components.core.config import BreakerConfig
from components.core.events import BreakerState
from components.risk.records import BreakerChanged

HUNDRED = Decimal(100)
HISTORY_KEPT = 50  # transitions shown at /status and kept in snapshots


class Trigger(StrEnum):
    """Why the breaker changed state; the `trigger` label of its metric."""

    DAILY_LOSS = "daily_loss"
    DRAWDOWN = "drawdown"
    VOLATILITY = "volatility"
    MANUAL = "manual"
    VENUE_DRIFT = "venue_drift"  # a position differs from the venue's after reconciliation
    RECOVERY_WAIT = "recovery_wait"  # open -> half_open
    TEST_PASSED = "test_passed"  # half_open -> closed
    NEW_SESSION = "new_session"  # a daily-loss trip's session ended
    MANUAL_RESET = "manual_reset"


TRIPS = frozenset(
    {Trigger.DAILY_LOSS, Trigger.DRAWDOWN, Trigger.VOLATILITY, Trigger.MANUAL, Trigger.VENUE_DRIFT}
)
# Trips that only a manual reset ends.
HELD_UNTIL_RESET = frozenset({Trigger.MANUAL, Trigger.VENUE_DRIFT})

# (state, trigger) -> next state; anything else is not a transition.
TRANSITIONS: dict[tuple[BreakerState, Trigger], BreakerState] = {
    **{(BreakerState.CLOSED, t): BreakerState.OPEN for t in TRIPS},
    **{(BreakerState.HALF_OPEN, t): BreakerState.OPEN for t in TRIPS},
    # A manual or venue-drift trip overrides an automatic one: it then needs a manual reset.
    (BreakerState.OPEN, Trigger.MANUAL): BreakerState.OPEN,
    (BreakerState.OPEN, Trigger.VENUE_DRIFT): BreakerState.OPEN,
    (BreakerState.OPEN, Trigger.RECOVERY_WAIT): BreakerState.HALF_OPEN,
    (BreakerState.OPEN, Trigger.NEW_SESSION): BreakerState.HALF_OPEN,
    (BreakerState.HALF_OPEN, Trigger.TEST_PASSED): BreakerState.CLOSED,
    (BreakerState.OPEN, Trigger.MANUAL_RESET): BreakerState.CLOSED,
    (BreakerState.HALF_OPEN, Trigger.MANUAL_RESET): BreakerState.CLOSED,
}


@dataclasses.dataclass
class Breaker:
    """The breaker's state, changed only by `apply` (live and on replay alike)."""

    state: BreakerState = BreakerState.CLOSED
    trigger: str = ""
    reason: str = ""
    since_ns: int = 0
    session: str = ""
    history: collections.deque[BreakerChanged] = dataclasses.field(
        default_factory=lambda: collections.deque(maxlen=HISTORY_KEPT)
    )

    def propose(
        self, trigger: Trigger, reason: str, now_ns: int, session: str
    ) -> BreakerChanged | None:
        """The record of `trigger` happening now, or None when it changes nothing."""
        target = TRANSITIONS.get((self.state, trigger))
        if target is None:
            return None
        if target is self.state and self.trigger == trigger:
            return None  # already open for this reason
        return BreakerChanged(
            ts_logged_ns=now_ns, state=target, trigger=trigger, reason=reason, session=session
        )

    def apply(self, record: BreakerChanged) -> None:
        self.state = record.state
        self.trigger = record.trigger
        self.reason = record.reason
        self.since_ns = record.ts_logged_ns
        self.session = record.session
        self.history.append(record)

    def due(self, config: BreakerConfig, now_ns: int, session: str) -> BreakerChanged | None:
        """The transition that time alone makes due now: recovery, end of test, new session."""
        elapsed_s = (now_ns - self.since_ns) / 1e9
        if self.state is BreakerState.OPEN:
            if self.trigger in HELD_UNTIL_RESET:
                return None  # only a manual reset
            if self.trigger == Trigger.DAILY_LOSS:
                if session == self.session:
                    return None
                why = f"session {session} started after the daily-loss trip of {self.session}"
                return self.propose(Trigger.NEW_SESSION, why, now_ns, session)
            if elapsed_s >= config.recovery_wait_s:
                why = f"open for {config.recovery_wait_s:g} s; testing with reduced sizes"
                return self.propose(Trigger.RECOVERY_WAIT, why, now_ns, session)
        elif self.state is BreakerState.HALF_OPEN and elapsed_s >= config.half_open_test_s:
            why = f"no trip during the {config.half_open_test_s:g} s test"
            return self.propose(Trigger.TEST_PASSED, why, now_ns, session)
        return None


class WindowExtremes:
    """The highest and lowest value over a sliding time window, in amortised O(1) per sample."""

    def __init__(self, window_ns: int) -> None:
        self.window_ns = window_ns
        self._highs: collections.deque[tuple[int, Decimal]] = collections.deque()
        self._lows: collections.deque[tuple[int, Decimal]] = collections.deque()

    def add(self, ts_ns: int, value: Decimal) -> tuple[Decimal, Decimal]:
        """Add a sample; return (highest, lowest) of the window ending at `ts_ns`."""
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= value:
            highs.pop()
        highs.append((ts_ns, value))
        while lows and lows[-1][1] >= value:
            lows.pop()
        lows.append((ts_ns, value))
        start = ts_ns - self.window_ns
        while highs[0][0] < start:
            highs.popleft()
        while lows[0][0] < start:
            lows.popleft()
        return highs[0][1], lows[0][1]

    def high_before_low(self) -> bool:
        """Whether the window's high came before its low: the move was a fall."""
        return self._highs[0][0] <= self._lows[0][0]


class Monitors:
    """Watch equity and prices; say which trip is due, if any."""

    def __init__(self, config: BreakerConfig) -> None:
        self.config = config
        self._equity = WindowExtremes(int(config.drawdown_window_s * 1e9))
        self._prices: dict[str, WindowExtremes] = {}

    def on_equity(
        self, now_ns: int, equity: Decimal, daily_pnl: Decimal
    ) -> tuple[Trigger, str] | None:
        config = self.config
        if daily_pnl <= -config.max_daily_loss:
            return Trigger.DAILY_LOSS, f"daily P&L {daily_pnl} <= -{config.max_daily_loss}"
        peak, _ = self._equity.add(now_ns, equity)
        if peak > 0 and (peak - equity) * HUNDRED >= config.max_drawdown_pct * peak:
            drawdown = round((peak - equity) * HUNDRED / peak, 2)
            return Trigger.DRAWDOWN, (
                f"equity {equity} is {drawdown}% below its peak {peak} of the last "
                f"{config.drawdown_window_s:g} s (limit {config.max_drawdown_pct}%)"
            )
        return None

    def on_price(self, now_ns: int, symbol: str, mid: Decimal) -> tuple[Trigger, str] | None:
        window = self._prices.get(symbol)
        if window is None:
            window = self._prices[symbol] = WindowExtremes(
                int(self.config.volatility_window_s * 1e9)
            )
        high, low = window.add(now_ns, mid)
        if (high - low) * HUNDRED >= self.config.max_move_pct * high:
            move = round((high - low) * HUNDRED / high, 2)
            direction = "fell" if window.high_before_low() else "rose"
            return Trigger.VOLATILITY, (
                f"{symbol} {direction} {move}% ({high} to {low}) within "
                f"{self.config.volatility_window_s:g} s (limit {self.config.max_move_pct}%)"
            )
        return None
