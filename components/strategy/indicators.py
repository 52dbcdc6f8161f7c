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
- `Dema`, `Tema` and `Trix` chain `Ema`s (each seeded as above), so their warm-ups add up:
  `2 (period - 1)`, `3 (period - 1)` and one more for TRIX's one-bar rate of change.
- `Kama` starts from the value before its first output; `Adx` sums `period - 1` directional
  moves and true ranges before Wilder-smoothing them, as TA-Lib does, and `Sar` takes its first
  trend from the second bar's -DM.
- `Stoch` and `StochRsi` use simple averages for %K and %D (TA-Lib's default `matype` 0);
  `Mfi` reads 0 while its window's money flow is below 1, as TA-Lib does.
- Divisions by a range or a total TA-Lib treats as zero (within 1e-8, or exactly 0) give 0.

Oscillators bounded by 0 and 100 (`Mfi`, `Stoch`, `StochRsi`) are exactly 0 over a window with
nothing on one side, where TA-Lib's slid sums leave a residue of about 1e-14; the tests compare
those to 1e-9 of their range. `Cci` is O(period) per update (a mean absolute deviation has no
sliding form; TA-Lib's is O(period) too); every other `update` is O(1), amortized for the
rolling extremes.

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


# --- trend, momentum, volume: the everyday indicators, each TA-Lib's definition --------------


def _is_zero(x: float) -> bool:
    """TA-Lib's `TA_IS_ZERO`: within 1e-8 of zero, where it treats a divisor as zero."""
    return -1e-8 < x < 1e-8


def _fraction(value: float, name: str) -> float:
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a finite number > 0 (was {value!r})")
    return value


class _WindowMean:
    """The mean of the last `period` values, slid in O(1), and exactly 0 over a window of zeros
    (an oscillator resting at its bound), where a slid sum would leave a rounding residue."""

    __slots__ = ("_nonzero", "_total", "_window", "period")

    def __init__(self, period: int) -> None:
        self.period = _period(period)
        self._window: deque[float] = deque()
        self._total = 0.0
        self._nonzero = 0  # values in the window that are not 0

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        self._nonzero += x != 0.0
        total = self._total + x
        if len(window) < self.period:
            self._total = total
            return None
        old = window.popleft()
        self._nonzero -= old != 0.0
        self._total = total - old if self._nonzero else 0.0
        return total / self.period


class Dema:
    """Double EMA: `2 x ema - ema(ema)`, both seeded as `Ema`; first after `2 x (period - 1)`
    values."""

    __slots__ = ("_inner", "_outer", "period", "value")

    def __init__(self, period: int = 30) -> None:
        self.period = _period(period)
        self._inner = Ema(period)
        self._outer = Ema(period)
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        first = self._inner.update(x)
        if first is None:
            return None
        second = self._outer.update(first)
        if second is None:
            return None
        self.value = value = 2.0 * first - second
        return value


class Tema:
    """Triple EMA: `3 x e1 - 3 x e2 + e3` of the EMA, the EMA of it and the EMA of that; first
    after `3 x (period - 1)` values."""

    __slots__ = ("_averages", "period", "value")

    def __init__(self, period: int = 30) -> None:
        self.period = _period(period)
        self._averages = (Ema(period), Ema(period), Ema(period))
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        first, second, third = self._averages
        e1 = first.update(x)
        e2 = None if e1 is None else second.update(e1)
        e3 = None if e2 is None else third.update(e2)
        if e3 is None:
            return None
        assert e1 is not None and e2 is not None
        self.value = value = e3 + (3.0 * e1 - 3.0 * e2)
        return value


class Trix:
    """Rate of change, in percent, of the triple-smoothed EMA (`ema(ema(ema(x)))`) from one value
    to the next; first after `3 x (period - 1) + 1` values."""

    __slots__ = ("_averages", "_previous", "period", "value")

    def __init__(self, period: int = 30) -> None:
        self.period = _period(period)
        self._averages = (Ema(period), Ema(period), Ema(period))
        self._previous: float | None = None
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        smoothed: float | None = x
        for average in self._averages:
            smoothed = average.update(smoothed) if smoothed is not None else None
        if smoothed is None:
            return None
        previous, self._previous = self._previous, smoothed
        if previous is None:
            return None
        self.value = value = (smoothed / previous - 1.0) * 100.0 if previous != 0 else 0.0
        return value


class Kama:
    """Kaufman's adaptive moving average: an EMA whose factor follows the efficiency ratio
    `|x - x[-period]| / sum |x[i] - x[i-1]|` between the factors of a 2- and a 30-period EMA,
    squared. TA-Lib starts it from the value before the first output; first after
    `period + 1` values."""

    __slots__ = ("_noise", "_window", "period", "value")

    FAST = 2.0 / (2 + 1)
    SLOW = 2.0 / (30 + 1)

    def __init__(self, period: int = 30) -> None:
        self.period = _period(period, 2)
        self._window: deque[float] = deque()  # the last period + 1 values
        self._noise = 0.0  # sum of |change| over the window, slid as TA-Lib slides it
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        if window:
            self._noise += abs(x - window[-1])
        window.append(x)
        if len(window) <= self.period:
            return None
        if len(window) > self.period + 1:
            oldest = window.popleft()
            self._noise -= abs(oldest - window[0])
        direction = x - window[0]
        noise = self._noise
        ratio = 1.0 if noise <= direction or _is_zero(noise) else abs(direction / noise)
        factor = ratio * (self.FAST - self.SLOW) + self.SLOW
        factor *= factor
        previous = self.value if self.value is not None else window[-2]
        self.value = value = (x - previous) * factor + previous
        return value


class Adx:
    """Average directional index with +DI and -DI, Wilder's smoothing; `update(high, low,
    close)` returns the ADX (first after `2 x period` bars), and sets `plus_di` and `minus_di`
    (first after `period + 1` bars).

    +DM is the rise of the high, -DM the fall of the low, whichever is larger (and positive);
    each DI is 100 x its smoothed DM / the smoothed true range; DX is 100 x |+DI - -DI| / (+DI +
    -DI); the ADX starts as the mean of the first `period` DX, then is Wilder-smoothed.
    """

    __slots__ = (
        "_count",
        "_dx_sum",
        "_minus_dm",
        "_plus_dm",
        "_previous",
        "_range",
        "minus_di",
        "period",
        "plus_di",
        "value",
    )

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._previous: tuple[float, float, float] | None = None
        self._count = 0  # bars after the first
        self._plus_dm = self._minus_dm = self._range = 0.0
        self._dx_sum = 0.0
        self.plus_di: float | None = None
        self.minus_di: float | None = None
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        previous, self._previous = self._previous, (high, low, close)
        if previous is None:
            return None
        previous_high, previous_low, previous_close = previous
        up, down = high - previous_high, previous_low - low
        plus = up if up > 0 and up > down else 0.0
        minus = down if down > 0 and up < down else 0.0
        true_range = max(high, previous_close) - min(low, previous_close)
        period = self.period
        self._count = count = self._count + 1
        if count < period:  # the first period - 1 changes are summed
            self._plus_dm += plus
            self._minus_dm += minus
            self._range += true_range
            return None
        self._plus_dm = self._plus_dm - self._plus_dm / period + plus
        self._minus_dm = self._minus_dm - self._minus_dm / period + minus
        self._range = self._range - self._range / period + true_range
        if _is_zero(self._range):
            self.plus_di = self.minus_di = 0.0
            return self.value if count >= 2 * period - 1 else None
        self.plus_di = plus_di = 100.0 * (self._plus_dm / self._range)
        self.minus_di = minus_di = 100.0 * (self._minus_dm / self._range)
        both = plus_di + minus_di
        dx = None if _is_zero(both) else 100.0 * (abs(minus_di - plus_di) / both)
        if count < 2 * period - 1:
            if dx is not None:
                self._dx_sum += dx
            return None
        if count == 2 * period - 1:
            if dx is not None:
                self._dx_sum += dx
            self.value = value = self._dx_sum / period
            return value
        if dx is not None:
            assert self.value is not None
            self.value = (self.value * (period - 1) + dx) / period
        return self.value


class Cci:
    """Commodity channel index: `(tp - mean) / (0.015 x mean deviation)` of the typical price
    `tp = (high + low + close) / 3` over `period` bars; 0 when either is 0.

    The mean absolute deviation has no sliding form: each update is O(period), as TA-Lib's; the
    window is summed in TA-Lib's (ring buffer) order, so values agree to the last bits.
    """

    __slots__ = ("_count", "_ring", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period, 2)
        self._ring = [0.0] * period
        self._count = 0
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        typical = (high + low + close) / 3
        ring = self._ring
        ring[self._count % self.period] = typical
        self._count += 1
        if self._count < self.period:
            return None
        mean = 0.0
        for value in ring:
            mean += value
        mean /= self.period
        deviation = 0.0
        for value in ring:
            deviation += abs(value - mean)
        distance = typical - mean
        result = (
            distance / (0.015 * (deviation / self.period))
            if distance != 0.0 and deviation != 0.0
            else 0.0
        )
        self.value = result
        return result


def _stochastic(close: float, highest: float, lowest: float) -> float:
    """Where `close` lies between the `lowest` (0) and the `highest` (100); 0 for a flat range."""
    scale = (highest - lowest) / 100.0
    return (close - lowest) / scale if scale != 0.0 else 0.0


class Stoch:
    """Slow stochastic: %K = SMA(`slowk_period`) of the fast %K (where the close lies in the
    `fastk_period` high-low range, 0 to 100), %D = SMA(`slowd_period`) of %K; `update(high, low,
    close)` returns `(k, d)`."""

    __slots__ = ("_d", "_highest", "_k", "_lowest", "d", "k")

    def __init__(self, fastk_period: int = 5, slowk_period: int = 3, slowd_period: int = 3) -> None:
        self._highest = RollingExtreme(fastk_period)
        self._lowest = RollingExtreme(fastk_period, lowest=True)
        self._k = _WindowMean(slowk_period)
        self._d = _WindowMean(slowd_period)
        self.k: float | None = None
        self.d: float | None = None

    def update(self, high: float, low: float, close: float) -> tuple[float, float] | None:
        highest, lowest = self._highest.update(high), self._lowest.update(low)
        if highest is None or lowest is None:
            return None
        k = self._k.update(_stochastic(close, highest, lowest))
        d = None if k is None else self._d.update(k)
        if d is None:
            return None
        assert k is not None
        self.k, self.d = k, d
        return k, d


class StochRsi:
    """Stochastic of the RSI: fast %K = where `Rsi(period)` lies in its own `fastk_period`
    range (0 to 100), %D = SMA(`fastd_period`) of it; returns `(k, d)`."""

    __slots__ = ("_d", "_highest", "_lowest", "_rsi", "d", "k")

    def __init__(self, period: int = 14, fastk_period: int = 5, fastd_period: int = 3) -> None:
        self._rsi = Rsi(period)
        self._highest = RollingExtreme(fastk_period)
        self._lowest = RollingExtreme(fastk_period, lowest=True)
        self._d = _WindowMean(fastd_period)
        self.k: float | None = None
        self.d: float | None = None

    def update(self, x: float) -> tuple[float, float] | None:
        rsi = self._rsi.update(x)
        if rsi is None:
            return None
        highest, lowest = self._highest.update(rsi), self._lowest.update(rsi)
        if highest is None or lowest is None:
            return None
        k = _stochastic(rsi, highest, lowest)
        d = self._d.update(k)
        if d is None:
            return None
        self.k, self.d = k, d
        return k, d


class Obv:
    """On-balance volume: the running sum of volume, added on an up close, subtracted on a down
    close, unchanged on an equal one; starts at the first bar's volume."""

    __slots__ = ("_previous", "value")

    def __init__(self) -> None:
        self._previous: float | None = None
        self.value: float | None = None

    def update(self, close: float, volume: float) -> float:
        previous, self._previous = self._previous, close
        value = self.value
        if previous is None or value is None:
            value = volume
        elif close > previous:
            value += volume
        elif close < previous:
            value -= volume
        self.value = value
        return value


class Mfi:
    """Money flow index: 100 x the money flow (typical price x volume) of the bars whose typical
    price rose, over that of the bars where it rose or fell, in the last `period` bars; 0 while
    that total is below 1 (TA-Lib's guard). `update(high, low, close, volume)`."""

    __slots__ = (
        "_flows",
        "_negative",
        "_negatives",
        "_positive",
        "_positives",
        "_previous",
        "period",
        "value",
    )

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._previous: float | None = None
        self._flows: deque[tuple[float, float]] = deque()  # (positive, negative) per bar
        self._positive = 0.0
        self._negative = 0.0
        self._positives = self._negatives = 0  # bars in the window with a flow of that sign
        self.value: float | None = None

    def update(self, high: float, low: float, close: float, volume: float) -> float | None:
        typical = (high + low + close) / 3
        previous, self._previous = self._previous, typical
        if previous is None:
            return None
        flows = self._flows
        if len(flows) == self.period:
            old_positive, old_negative = flows.popleft()
            self._positive -= old_positive
            self._negative -= old_negative
            self._positives -= old_positive != 0.0
            self._negatives -= old_negative != 0.0
        flow = typical * volume
        change = typical - previous
        positive = flow if change > 0 else 0.0
        negative = flow if change < 0 else 0.0
        flows.append((positive, negative))
        self._positives += positive != 0.0
        self._negatives += negative != 0.0
        # A side with no flow left in the window sums to 0, not to the residue of its slides.
        self._positive = self._positive + positive if self._positives else 0.0
        self._negative = self._negative + negative if self._negatives else 0.0
        if len(flows) < self.period:
            return None
        total = self._positive + self._negative
        self.value = value = 100.0 * (self._positive / total) if total >= 1.0 else 0.0
        return value


class Roc:
    """Rate of change in percent: `(x / x[-period] - 1) x 100`; 0 if the old value is 0."""

    __slots__ = ("_window", "period", "value")

    def __init__(self, period: int = 10) -> None:
        self.period = _period(period)
        self._window: deque[float] = deque()
        self.value: float | None = None

    def update(self, x: float) -> float | None:
        window = self._window
        window.append(x)
        if len(window) <= self.period:
            return None
        old = window.popleft()
        self.value = value = (x / old - 1.0) * 100.0 if old != 0.0 else 0.0
        return value


class WillR:
    """Williams' %R: where the close lies in the `period` high-low range, from 0 (at the high)
    to -100 (at the low); 0 for a flat range. `update(high, low, close)`."""

    __slots__ = ("_highest", "_lowest", "period", "value")

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._highest = RollingExtreme(period)
        self._lowest = RollingExtreme(period, lowest=True)
        self.value: float | None = None

    def update(self, high: float, low: float, close: float) -> float | None:
        highest, lowest = self._highest.update(high), self._lowest.update(low)
        if highest is None or lowest is None:
            return None
        scale = (highest - lowest) / -100.0
        self.value = value = (highest - close) / scale if scale != 0.0 else 0.0
        return value


class Aroon:
    """Aroon down and up: `100 x (period - bars since the lowest low / highest high) / period`
    over the last `period + 1` bars (a tie counts its latest bar); `update(high, low)` returns
    `(down, up)`, as TA-Lib orders them."""

    __slots__ = ("_count", "_factor", "_highs", "_lows", "down", "period", "up")

    def __init__(self, period: int = 14) -> None:
        self.period = _period(period)
        self._factor = 100.0 / period
        self._highs: deque[tuple[int, float]] = deque()  # candidates, as in RollingExtreme
        self._lows: deque[tuple[int, float]] = deque()
        self._count = 0
        self.down: float | None = None
        self.up: float | None = None

    def update(self, high: float, low: float) -> tuple[float, float] | None:
        index = self._count
        self._count += 1
        highs, lows = self._highs, self._lows
        while highs and highs[-1][1] <= high:
            highs.pop()
        highs.append((index, high))
        while lows and lows[-1][1] >= low:
            lows.pop()
        lows.append((index, low))
        oldest = index - self.period
        if highs[0][0] < oldest:
            highs.popleft()
        if lows[0][0] < oldest:
            lows.popleft()
        if oldest < 0:
            return None
        period, factor = self.period, self._factor
        self.down = down = factor * (period - (index - lows[0][0]))
        self.up = up = factor * (period - (index - highs[0][0]))
        return down, up


class Sar:
    """Wilder's parabolic stop and reverse, as TA-Lib runs it: the first trend is short if the
    second bar's low fell further than its high rose (TA-Lib's -DM), else long; the SAR moves
    toward the extreme point by a factor that starts at `acceleration`, grows by it at each new
    extreme up to `maximum`, never enters the last two bars' range, and flips to the extreme
    point when price crosses it. `update(high, low)`; first value on the second bar."""

    __slots__ = (
        "_extreme",
        "_factor",
        "_long",
        "_previous",
        "_sar",
        "acceleration",
        "maximum",
        "value",
    )

    def __init__(self, acceleration: float = 0.02, maximum: float = 0.2) -> None:
        self.acceleration = _fraction(acceleration, "acceleration")
        self.maximum = _fraction(maximum, "maximum")
        if acceleration > maximum:
            self.acceleration = maximum  # TA-Lib caps the step at the maximum
        self._previous: tuple[float, float] | None = None
        self._long = True
        self._sar = 0.0
        self._extreme = 0.0
        self._factor = self.acceleration
        self.value: float | None = None

    def update(self, high: float, low: float) -> float | None:
        previous, self._previous = self._previous, (high, low)
        if previous is None:
            return None
        previous_high, previous_low = previous
        step = self.acceleration
        if self.value is None:
            # Start: the trend from the first two bars, the SAR at the first bar's far end.
            fall, rise = previous_low - low, high - previous_high
            self._long = not (fall > 0 and rise < fall)
            self._extreme, self._sar = (high, previous_low) if self._long else (low, previous_high)
            previous_high, previous_low = high, low  # TA-Lib's first range is this bar alone
        sar, extreme, factor = self._sar, self._extreme, self._factor
        if self._long:
            if low <= sar:  # reversed: short from the extreme
                self._long = False
                sar = max(extreme, previous_high, high)
                output = sar
                factor, extreme = step, low
                sar = max(sar + factor * (extreme - sar), previous_high, high)
            else:
                output = sar
                if high > extreme:
                    extreme = high
                    factor = min(factor + step, self.maximum)
                sar = min(sar + factor * (extreme - sar), previous_low, low)
        elif high >= sar:  # reversed: long from the extreme
            self._long = True
            sar = min(extreme, previous_low, low)
            output = sar
            factor, extreme = step, high
            sar = min(sar + factor * (extreme - sar), previous_low, low)
        else:
            output = sar
            if low < extreme:
                extreme = low
                factor = min(factor + step, self.maximum)
            sar = max(sar + factor * (extreme - sar), previous_high, high)
        self._sar, self._extreme, self._factor = sar, extreme, factor
        self.value = output
        return output
