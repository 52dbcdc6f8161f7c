"""A feature vector per bar, named in config: `["return:1", "zscore:20", "rsi:14"]`.

Each feature is an incremental indicator (`indicators`) made scale-free, so that one model fits
any price level:

    return:N              close / close N bars ago - 1
    sma:N, ema:N, wma:N   close / average - 1
    vwap:N                close / rolling VWAP of the bars' (vwap, volume) - 1
    zscore:N              z-score of the close in its last N closes
    rsi:N                 RSI / 100
    volatility:N          realized volatility of the last N log returns (per bar)
    atr:N                 ATR / close
    macd:F:S:G            MACD histogram / close
    bollinger:N:K         %B: (close - lower) / (upper - lower), 0.5 on a flat window

`FeatureSet.update(bar)` returns the vector once every feature is warm, `None` before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence

from components.core.events import Bar
from components.strategy import indicators

Feature = Callable[[Bar, float], float | None]


def _ratio(average: float | None, close: float) -> float | None:
    return None if average is None or average == 0 else close / average - 1


def _returns(period: int) -> Feature:
    closes: deque[float] = deque(maxlen=period + 1)

    def update(bar: Bar, close: float) -> float | None:
        closes.append(close)
        return close / closes[0] - 1 if len(closes) > period else None

    return update


def _average(kind: type[indicators.Sma | indicators.Ema | indicators.Wma], period: int) -> Feature:
    average = kind(period)
    return lambda bar, close: _ratio(average.update(close), close)


def _vwap(period: int) -> Feature:
    vwap = indicators.RollingVwap(period)
    return lambda bar, close: _ratio(vwap.update(float(bar.vwap), float(bar.volume)), close)


def _scaled(update: Callable[[float], float | None], scale: float = 1.0) -> Feature:
    def feature(bar: Bar, close: float) -> float | None:
        value = update(close)
        return None if value is None else value * scale

    return feature


def _atr(period: int) -> Feature:
    atr = indicators.Atr(period)

    def update(bar: Bar, close: float) -> float | None:
        value = atr.update(float(bar.high), float(bar.low), close)
        return None if value is None else value / close

    return update


def _macd(fast: int, slow: int, signal: int) -> Feature:
    macd = indicators.Macd(fast, slow, signal)

    def update(bar: Bar, close: float) -> float | None:
        value = macd.update(close)
        return None if value is None else value[2] / close

    return update


def _bollinger(period: int, width: float) -> Feature:
    bands = indicators.Bollinger(period, width)

    def update(bar: Bar, close: float) -> float | None:
        value = bands.update(close)
        if value is None:
            return None
        upper, _, lower = value
        return (close - lower) / (upper - lower) if upper > lower else 0.5

    return update


def _build(spec: str) -> Feature:
    name, *raw = spec.split(":")
    try:
        args = [float(a) if "." in a else int(a) for a in raw]
    except ValueError:
        raise ValueError(f"{spec!r}: arguments must be numbers") from None
    ints = [int(a) for a in args if isinstance(a, int)]
    builders: dict[str, tuple[int, Callable[[], Feature]]] = {
        "return": (1, lambda: _returns(*ints)),
        "sma": (1, lambda: _average(indicators.Sma, *ints)),
        "ema": (1, lambda: _average(indicators.Ema, *ints)),
        "wma": (1, lambda: _average(indicators.Wma, *ints)),
        "vwap": (1, lambda: _vwap(*ints)),
        "zscore": (1, lambda: _scaled(indicators.ZScore(*ints).update)),
        "rsi": (1, lambda: _scaled(indicators.Rsi(*ints).update, 0.01)),
        "volatility": (1, lambda: _scaled(indicators.RealizedVolatility(*ints).update)),
        "atr": (1, lambda: _atr(*ints)),
        "macd": (3, lambda: _macd(*ints)),
        "bollinger": (2, lambda: _bollinger(int(args[0]), float(args[1]))),
    }
    if name not in builders:
        raise ValueError(f"{spec!r}: unknown feature {name!r} (known: {', '.join(builders)})")
    arity, build = builders[name]
    if len(args) != arity or (name != "bollinger" and len(ints) != arity):
        raise ValueError(f"{spec!r}: {name} takes {arity} integer argument(s)")
    if name == "return" and ints[0] < 1:
        raise ValueError(f"{spec!r}: period must be an integer >= 1")
    try:
        return build()
    except ValueError as exc:
        raise ValueError(f"{spec!r}: {exc}") from None


class FeatureSet:
    """The named features of one symbol's bars, in order."""

    def __init__(self, specs: Sequence[str]) -> None:
        if not specs:
            raise ValueError("at least one feature is needed")
        self.specs = list(specs)
        self._features = [_build(spec) for spec in specs]

    def update(self, bar: Bar) -> list[float] | None:
        close = float(bar.close)
        values = [feature(bar, close) for feature in self._features]
        if any(value is None for value in values):
            return None
        return values  # type: ignore[return-value]

    @staticmethod
    def check(specs: Sequence[str]) -> None:
        """Raise `ValueError` naming the first invalid spec."""
        FeatureSet(specs)
