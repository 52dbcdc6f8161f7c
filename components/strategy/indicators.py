"""Incremental indicators: each `update` takes the next value and costs O(1), whatever the window.

Indicators are features, not money: they run on `float` for speed (a strategy converts a bar's
`Decimal` prices once, with `float()`), and nothing here is ever booked. Every `update` returns
the indicator's value, or `None` while it is warming up; `value` holds the last one.

Where TA-Lib has the indicator, the value is TA-Lib's, computed the same way so that it agrees to
rounding (tests compare to 1e-9 relative):

- `Ema` is seeded with the simple average of its first `period` values, then
  `ema += (x - ema) * 2 / (period + 1)`; first value after `period` inputs.
- `Rsi` and `Atr` use Wilder's smoothing (`avg = (avg * (period - 1) + x) / period`) seeded with
  the simple average of the first `period` changes (true ranges); both need `period + 1` inputs.
- `Macd` seeds its fast average with the `fast` values that end where the slow one's seed ends
  (TA-Lib aligns the two that way), and its signal with the average of the first `signal` lines.
- `Bollinger` and `StdDev` use the population standard deviation (divided by `period`).

Window sums are updated, not recomputed; variances use the sliding form of Welford's update, which
does not cancel catastrophically the way a sum of squares does on prices far from zero.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from components.core.events import BookLevel

NaN = math.nan
_STEP_ERROR = 4 * 2.0**-52  # a few units in the last place, per term of a sliding step
_ERROR_SHARE = 1e-11  # the largest share of the variance the accumulated error may reach


def _period(period: int, minimum: int = 1) -> int:
    if isinstance(period, bool) or not isinstance(period, int) or period < minimum:
        raise ValueError(f"period must be an integer >= {minimum} (was {period!r})")
    return period


class Sma:
    """Simple moving average of the last `period` values."""

    __slots__ = ("_sum", "_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._window: deque[float] = deque()
        self._sum = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        self._sum += x
        if len(window) > self.period:
            self._sum -= window.popleft()
        elif len(window) < self.period:
            return None
        self.value = value = self._sum / self.period
        return value


class Ema:
    """Exponential moving average, `alpha = 2 / (period + 1)`, seeded with the first SMA."""

    __slots__ = ("_alpha", "_count", "_seed", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._alpha = 2.0 / (period + 1)
        self._count = 0
        self._seed = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        value = self.value
        if value is not None:
            self.value = value = (x - value) * self._alpha + value
            return value
        self._count += 1
        self._seed += x
        if self._count < self.period:
            return None
        self.value = value = self._seed / self.period
        return value


class Wma:
    """Linearly weighted moving average: the newest value weighs `period`, the oldest 1."""

    __slots__ = ("_divisor", "_sum", "_weighted", "_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._divisor = period * (period + 1) / 2
        self._window: deque[float] = deque()
        self._sum = 0.0  # plain sum of the window
        self._weighted = 0.0  # sum of weight x value
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        period = self.period
        if len(window) == period:
            # Every weight drops by one (the oldest value's to zero), then x enters at `period`.
            self._weighted += period * x - self._sum
            self._sum += x - window.popleft()
            window.append(x)
        else:
            window.append(x)
            self._sum += x
            self._weighted += len(window) * x
            if len(window) < period:
                return None
        self.value = value = self._weighted / self._divisor
        return value


class RollingMoments:
    """Mean and population variance of the last `period` values (sliding Welford update).

    Each sliding step can be off by a few units in the last place of `mean x move`, and those
    errors add up; relative to the variance they are large when the window turns nearly flat
    after a move. So the moments keep a bound on their accumulated error and are recomputed from
    the window in two passes (`fsum`) when it could reach 1e-11 of the variance, or after
    `period` steps anyway; on market data that is rare, so an update stays O(1) on average.
    """

    __slots__ = ("_error", "_m2", "_steps", "_window", "mean", "period")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._window: deque[float] = deque()
        self.mean = 0.0
        self._m2 = 0.0
        self._error = 0.0  # a bound on the rounding error accumulated in _m2
        self._steps = 0  # sliding steps since the last exact computation

    def update(self, x: float) -> bool:
        """Add `x` (dropping the oldest value once full); True once the window is full."""
        window = self._window
        window.append(x)
        count = len(window)
        period = self.period
        if count < period:
            return False
        if count > period:
            old = window.popleft()
            move = x - old
            mean = self.mean
            new_mean = mean + move / period
            m2 = self._m2 + move * (x - new_mean + old - mean)
            error = self._error + _STEP_ERROR * abs(move) * (abs(x) + abs(old) + abs(mean))
            steps = self._steps + 1
            if steps < period and error <= _ERROR_SHARE * m2:
                self.mean, self._m2, self._error, self._steps = new_mean, m2, error, steps
                return True
        self._exact()
        return True

    def _exact(self) -> None:
        window = self._window
        self.mean = mean = math.fsum(window) / len(window)
        self._m2 = math.fsum((v - mean) * (v - mean) for v in window)
        self._error = 0.0
        self._steps = 0

    @property
    def variance(self) -> float:
        # Rounding can leave a tiny negative sum on a flat window: it is zero.
        m2 = self._m2
        return (m2 / self.period if m2 > 0 else 0.0) if self._window else NaN

    @property
    def deviation(self) -> float:
        """The population standard deviation (the square root of `variance`)."""
        m2 = self._m2
        return math.sqrt(m2 / self.period) if m2 > 0 else 0.0


class StdDev:
    """Population standard deviation of the last `period` values."""

    __slots__ = ("_moments", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._moments = RollingMoments(period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        if not self._moments.update(x):
            return None
        self.value = value = self._moments.deviation
        return value


class Bollinger:
    """Bands `width` population standard deviations either side of the `period` SMA.

    `update` returns `(upper, middle, lower)`.
    """

    __slots__ = ("_moments", "lower", "middle", "period", "upper", "width")

    def __init__(self, period: int = 20, width: float = 2.0) -> None:
        self.period = _period(period)
        if not (width > 0 and math.isfinite(width)):
            raise ValueError(f"width must be a finite number > 0 (was {width!r})")
        self.width = width
        self._moments = RollingMoments(period)
        self.upper: float | None = None
        self.middle: float | None = None
        self.lower: float | None = None

    def update(self, x: float) -> tuple[float, float, float] | None:
        moments = self._moments
        if not moments.update(x):
            return None
        middle = moments.mean
        spread = self.width * moments.deviation
        self.upper, self.middle, self.lower = bands = (middle + spread, middle, middle - spread)
        return bands


class ZScore:
    """How many population standard deviations `x` is from the mean of the last `period` values
    (itself included); 0 when the window is flat."""

    __slots__ = ("_moments", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period, 2)
        self._moments = RollingMoments(period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        moments = self._moments
        if not moments.update(x):
            return None
        deviation = moments.deviation
        self.value = value = (x - moments.mean) / deviation if deviation > 0 else 0.0
        return value


class Rsi:
    """Relative strength index with Wilder's smoothing, in [0, 100]."""

    __slots__ = ("_count", "_gain", "_loss", "_previous", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._previous: float | None = None
        self._count = 0  # changes seen, up to `period`
        self._gain = 0.0
        self._loss = 0.0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        previous, self._previous = self._previous, x
        if previous is None:
            return None
        change = x - previous
        gain = change if change > 0 else 0.0
        loss = -change if change < 0 else 0.0
        period = self.period
        if self._count < period:
            self._count += 1
            self._gain += gain
            self._loss += loss
            if self._count < period:
                return None
            self._gain /= period
            self._loss /= period
        else:
            self._gain = (self._gain * (period - 1) + gain) / period
            self._loss = (self._loss * (period - 1) + loss) / period
        total = self._gain + self._loss
        self.value = value = 100.0 * self._gain / total if total > 0 else 0.0
        return value


class Macd:
    """MACD line (fast EMA - slow EMA), its signal EMA and the histogram (line - signal).

    `update` returns `(line, signal, histogram)`, first after `slow + signal - 1` values.
    """

    __slots__ = (
        "_count",
        "_fast",
        "_fast_alpha",
        "_recent",
        "_signal",
        "_slow",
        "_slow_alpha",
        "fast",
        "histogram",
        "line",
        "signal",
        "signal_period",
        "slow",
    )

    def __init__(self, fast: int = 12, slow: int = 26, signal: int = 9) -> None:
        self.fast = _period(fast, 2)
        self.slow = _period(slow, 2)
        if fast >= slow:
            raise ValueError(f"fast ({fast}) must be less than slow ({slow})")
        self.signal_period = _period(signal)
        self._fast_alpha = 2.0 / (fast + 1)
        self._slow_alpha = 2.0 / (slow + 1)
        self._count = 0
        self._recent: deque[float] = deque()  # every value until the slow average is seeded
        self._fast: float | None = None
        self._slow: float | None = None
        self._signal = Ema(signal)
        self.line: float | None = None
        self.signal: float | None = None
        self.histogram: float | None = None

    def update(self, x: float) -> tuple[float, float, float] | None:
        slow = self._slow
        if slow is None:
            recent = self._recent
            recent.append(x)
            if len(recent) < self.slow:
                return None
            # Seed both averages where the slow one can start: the fast one with its last
            # `fast` values only, as TA-Lib aligns them.
            self._slow = slow = sum(recent) / self.slow
            self._fast = fast = sum(list(recent)[-self.fast :]) / self.fast
            recent.clear()
        else:
            fast = self._fast
            assert fast is not None
            self._fast = fast = (x - fast) * self._fast_alpha + fast
            self._slow = slow = (x - slow) * self._slow_alpha + slow
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        self.line, self.signal, self.histogram = result = (line, signal, line - signal)
        return result


class Atr:
    """Average true range with Wilder's smoothing; `update(high, low, close)`."""

    __slots__ = ("_count", "_previous_close", "_sum", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._previous_close: float | None = None
        self._count = 0
        self._sum = 0.0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        previous, self._previous_close = self._previous_close, close
        if previous is None:
            return None  # the first bar has no true range (TA-Lib skips it too)
        true_range = max(high, previous) - min(low, previous)
        period = self.period
        value = self.value
        if value is not None:
            self.value = value = (value * (period - 1) + true_range) / period
            return value
        self._count += 1
        self._sum += true_range
        if self._count < period:
            return None
        self.value = value = self._sum / period
        return value


class RollingVwap:
    """Volume-weighted average price of the last `period` (price, volume) pairs; `None` while the
    window's volume is zero."""

    __slots__ = ("_notional", "_volume", "_window", "period", "value")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._window: deque[tuple[float, float]] = deque()
        self._notional = 0.0
        self._volume = 0.0
        self.value: float | None = None

    def update(self, price: float, volume: float) -> float | None:
        if volume < 0 or not math.isfinite(volume):
            raise ValueError(f"volume must be finite and >= 0 (was {volume!r})")
        window = self._window
        window.append((price, volume))
        self._notional += price * volume
        self._volume += volume
        if len(window) > self.period:
            old_price, old_volume = window.popleft()
            self._notional -= old_price * old_volume
            self._volume -= old_volume
        elif len(window) < self.period:
            return None
        if self._volume <= 0:
            self.value = None
            return None
        self.value = value = self._notional / self._volume
        return value


class RealizedVolatility:
    """Sample standard deviation of the last `period` log returns, times `sqrt(periods_per_year)`
    (1 by default: per bar). Needs `period + 1` prices."""

    __slots__ = ("_moments", "_previous", "_scale", "period", "value")

    def __init__(self, period: int, periods_per_year: float = 1.0) -> None:
        self.period = _period(period, 2)
        if not (periods_per_year > 0 and math.isfinite(periods_per_year)):
            raise ValueError(f"periods_per_year must be > 0 (was {periods_per_year!r})")
        # Population variance x period / (period - 1) is the sample variance.
        self._scale = math.sqrt(periods_per_year * period / (period - 1))
        self._moments = RollingMoments(period)
        self._previous: float | None = None
        self.value: float | None = None

    def update(self, price: float) -> float | None:
        if not price > 0:
            raise ValueError(f"price must be > 0 (was {price!r})")
        previous, self._previous = self._previous, price
        if previous is None or not self._moments.update(math.log(price / previous)):
            return None
        self.value = value = self._moments.deviation * self._scale
        return value


class RollingExtreme:
    """The highest (or, with `lowest=True`, the lowest) of the last `period` values.

    A deque of (index, value) candidates kept monotonic: a new value evicts every older one it
    beats, since those can never be the extreme again; each value enters and leaves once, so an
    update is O(1) on average.
    """

    __slots__ = ("_candidates", "_count", "_lowest", "period", "value")

    def __init__(self, period: int, lowest: bool = False) -> None:
        self.period = _period(period)
        self._lowest = lowest
        self._candidates: deque[tuple[int, float]] = deque()
        self._count = 0
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        candidates = self._candidates
        index = self._count
        self._count += 1
        if self._lowest:
            while candidates and candidates[-1][1] >= x:
                candidates.pop()
        else:
            while candidates and candidates[-1][1] <= x:
                candidates.pop()
        candidates.append((index, x))
        if candidates[0][0] <= index - self.period:
            candidates.popleft()
        if self._count < self.period:
            return None
        self.value = value = candidates[0][1]
        return value


def book_imbalance(bid_sizes: float, ask_sizes: float) -> float | None:
    """`(bids - asks) / (bids + asks)` of the sizes resting near the touch, in [-1, 1]: +1 is all
    bids. `None` for an empty book. Pass the top-of-book sizes of a `Quote`, or the sizes of the
    top levels of a `BookSnapshot` summed with `book_depth`."""
    if bid_sizes < 0 or ask_sizes < 0:
        raise ValueError(f"sizes must be >= 0 (was bids={bid_sizes!r}, asks={ask_sizes!r})")
    total = bid_sizes + ask_sizes
    return (bid_sizes - ask_sizes) / total if total > 0 else None


def book_depth(levels: Sequence[BookLevel], depth: int) -> float:
    """The total size of the best `depth` levels of one side of a book (best first)."""
    return float(sum(level.size for level in levels[: _period(depth)]))


class BookImbalance:
    """Order-book imbalance (see `book_imbalance`) smoothed over the last `period` updates."""

    __slots__ = ("_average", "period", "value")

    def __init__(self, period: int = 1) -> None:
        self.period = _period(period)
        self._average = Sma(period)
        self.value: float | None = None

    def update(self, bid_sizes: float, ask_sizes: float) -> float | None:
        imbalance = book_imbalance(bid_sizes, ask_sizes)
        if imbalance is None:
            return self.value  # an empty book tells nothing new
        self.value = value = self._average.update(imbalance)
        return value
