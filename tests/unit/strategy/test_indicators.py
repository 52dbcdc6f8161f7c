"""Incremental indicators against TA-Lib (the oracle) on the same series, after TA-Lib's warm-up:
values to 1e-9 relative and the same first value's index; the indicators TA-Lib lacks (rolling
VWAP, z-score, realized volatility, book imbalance) against direct formulas; bad parameters."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pytest
import talib

from components.core.events import BookLevel
from components.strategy import indicators

RELATIVE = 1e-9
N = 600


def _series(seed: int, n: int = N) -> dict[str, np.ndarray]:
    """A random walk of daily-like bars around 100, with highs above and lows below."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.01, n))
    volume = rng.integers(1, 10_000, n).astype(float)
    return {"open": open_, "high": high, "low": low, "close": close, "volume": volume}


def _run(update: Callable[..., object], *columns: np.ndarray) -> list[object]:
    return [update(*(float(c[i]) for c in columns)) for i in range(len(columns[0]))]


def _assert_agrees(ours: list[float | None], oracle: np.ndarray, scale: float = 0.0) -> None:
    """Ours is None exactly where TA-Lib is NaN (the warm-up), and equal to 1e-9 after it:
    relative to the value, or for an oscillator bounded by `scale` (100) to its range, where the
    true value 0 comes out of TA-Lib's sliding sums as a residue such as 7.7e-15."""
    warmup = int(np.argmax(~np.isnan(oracle)))
    assert all(v is None for v in ours[:warmup])
    assert all(v is not None for v in ours[warmup:])
    got = np.array(ours[warmup:], dtype=float)
    np.testing.assert_allclose(got, oracle[warmup:], rtol=RELATIVE, atol=RELATIVE * scale)


SEEDS = [1, 2, 3]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [1, 2, 5, 20, 200])
def test_sma_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Sma(period).update, close), talib.SMA(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 5, 12, 26, 100])
def test_ema_when_random_walk_then_equals_talib_seeded_with_sma(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Ema(period).update, close), talib.EMA(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 5, 30])
def test_wma_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Wma(period).update, close), talib.WMA(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 50])
def test_rsi_when_random_walk_then_equals_talib_wilder(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Rsi(period).update, close), talib.RSI(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (3, 10, 4), (5, 6, 1)])
def test_macd_when_random_walk_then_line_signal_histogram_equal_talib(
    seed: int, fast: int, slow: int, signal: int
) -> None:
    close = _series(seed)["close"]
    ours = _run(indicators.Macd(fast, slow, signal).update, close)
    line, sig, hist = talib.MACD(close, fast, slow, signal)
    for column, oracle in enumerate((line, sig, hist)):
        _assert_agrees([None if v is None else v[column] for v in ours], oracle)  # type: ignore[index]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("period", "width"), [(20, 2.0), (5, 1.5), (50, 3.0)])
def test_bollinger_when_random_walk_then_bands_equal_talib_population_stdev(
    seed: int, period: int, width: float
) -> None:
    close = _series(seed)["close"]
    ours = _run(indicators.Bollinger(period, width).update, close)
    upper, middle, lower = talib.BBANDS(close, period, width, width, matype=0)
    for column, oracle in enumerate((upper, middle, lower)):
        _assert_agrees([None if v is None else v[column] for v in ours], oracle)  # type: ignore[index]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 10, 60])
def test_stddev_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.StdDev(period).update, close), talib.STDDEV(close, period, 1))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 3, 20, 100])
def test_rolling_extremes_when_random_bars_then_equal_talib_max_and_min(
    seed: int, period: int
) -> None:
    bars = _series(seed)
    highest = _run(indicators.RollingExtreme(period).update, bars["high"])
    lowest = _run(indicators.RollingExtreme(period, lowest=True).update, bars["low"])
    _assert_agrees(highest, talib.MAX(bars["high"], period))
    _assert_agrees(lowest, talib.MIN(bars["low"], period))


def test_stddev_when_prices_far_from_zero_then_no_cancellation() -> None:
    """A sum of squares loses every digit at 1e6 +- 1e-3; the sliding Welford update does not."""
    rng = np.random.default_rng(4)
    prices = 1e6 + rng.normal(0, 1e-3, 5000)
    ours = _run(indicators.StdDev(50).update, prices)
    expected = [np.std(prices[i - 49 : i + 1]) for i in range(49, len(prices))]
    np.testing.assert_allclose(np.array(ours[49:], dtype=float), expected, rtol=1e-5)


@pytest.mark.parametrize("seed", SEEDS)
def test_zscore_when_random_walk_then_distance_from_window_mean_in_stdevs(seed: int) -> None:
    close = _series(seed)["close"]
    period = 20
    ours = _run(indicators.ZScore(period).update, close)
    mean, stdev = talib.SMA(close, period), talib.STDDEV(close, period, 1)
    _assert_agrees(ours, (close - mean) / stdev)


def test_zscore_when_window_flat_then_zero() -> None:
    zscore = indicators.ZScore(3)
    assert [zscore.update(5.0) for _ in range(4)] == [None, None, 0.0, 0.0]


@pytest.mark.parametrize("seed", SEEDS)
def test_rolling_vwap_when_random_bars_then_window_notional_over_volume(seed: int) -> None:
    bars = _series(seed)
    price, volume = bars["close"], bars["volume"]
    period = 10
    ours = _run(indicators.RollingVwap(period).update, price, volume)
    notional = talib.SUM(price * volume, period)
    _assert_agrees(ours, notional / talib.SUM(volume, period))


def test_rolling_vwap_when_window_has_no_volume_then_none() -> None:
    vwap = indicators.RollingVwap(2)
    assert [vwap.update(10.0, 0.0), vwap.update(11.0, 0.0), vwap.update(12.0, 3.0)] == [
        None,
        None,
        12.0,
    ]
    with pytest.raises(ValueError, match="volume must be finite and >= 0"):
        vwap.update(12.0, -1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_realized_volatility_when_random_walk_then_sample_stdev_of_log_returns(seed: int) -> None:
    close = _series(seed)["close"]
    period = 21
    ours = _run(indicators.RealizedVolatility(period, periods_per_year=252).update, close)
    returns = np.log(close[1:] / close[:-1])
    expected = np.full(len(close), np.nan)
    for i in range(period, len(close)):
        expected[i] = np.std(returns[i - period : i], ddof=1) * math.sqrt(252)
    _assert_agrees(ours, expected)


def test_book_imbalance_when_sizes_then_signed_share_of_bids() -> None:
    assert indicators.book_imbalance(300.0, 100.0) == 0.5
    assert indicators.book_imbalance(0.0, 50.0) == -1.0
    assert indicators.book_imbalance(0.0, 0.0) is None
    with pytest.raises(ValueError, match="sizes must be >= 0"):
        indicators.book_imbalance(-1.0, 1.0)


def test_book_imbalance_when_smoothed_over_snapshot_depth_then_average_of_updates() -> None:
    bids = [BookLevel(Decimal("99.9"), Decimal(100)), BookLevel(Decimal("99.8"), Decimal(200))]
    asks = [BookLevel(Decimal("100.1"), Decimal(100)), BookLevel(Decimal("100.2"), Decimal(900))]
    assert (indicators.book_depth(bids, 2), indicators.book_depth(asks, 1)) == (300.0, 100.0)
    imbalance = indicators.BookImbalance(2)
    assert imbalance.update(300.0, 100.0) is None
    assert imbalance.update(0.0, 0.0) is None  # an empty book is no information
    assert imbalance.update(100.0, 300.0) == 0.0  # (0.5 + -0.5) / 2


@pytest.mark.parametrize(
    "build",
    [
        lambda: indicators.Sma(0),
        lambda: indicators.Ema(-1),
        lambda: indicators.Wma(2.5),
        lambda: indicators.Rsi(True),
        lambda: indicators.Macd(26, 12, 9),
        lambda: indicators.Bollinger(20, float("nan")),
        lambda: indicators.ZScore(1),
        lambda: indicators.RealizedVolatility(20, periods_per_year=0),
    ],
)
def test_indicator_when_parameters_invalid_then_value_error(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


def test_realized_volatility_when_price_not_positive_then_value_error() -> None:
    with pytest.raises(ValueError, match="price must be > 0"):
        indicators.RealizedVolatility(5).update(0.0)


# --- the everyday indicators added for research: each against TA-Lib's function of that name ---


def _column(ours: list[object], index: int) -> list[float | None]:
    return [None if v is None else v[index] for v in ours]  # type: ignore[index]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 5, 30])
def test_dema_and_tema_when_random_walk_then_equal_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Dema(period).update, close), talib.DEMA(close, period))
    _assert_agrees(_run(indicators.Tema(period).update, close), talib.TEMA(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 10, 30])
def test_kama_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Kama(period).update, close), talib.KAMA(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx_when_random_bars_then_adx_and_both_di_equal_talib(seed: int, period: int) -> None:
    bars = _series(seed)
    hlc = (bars["high"], bars["low"], bars["close"])
    adx = indicators.Adx(period)
    plus: list[float | None] = []
    minus: list[float | None] = []

    def update(high: float, low: float, close: float) -> float | None:
        value = adx.update(high, low, close)
        plus.append(adx.plus_di)
        minus.append(adx.minus_di)
        return value

    ours = _run(update, *hlc)
    _assert_agrees(ours, talib.ADX(*hlc, period))
    _assert_agrees(plus, talib.PLUS_DI(*hlc, period))
    _assert_agrees(minus, talib.MINUS_DI(*hlc, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 40])
def test_cci_when_random_bars_then_equals_talib(seed: int, period: int) -> None:
    bars = _series(seed)
    hlc = (bars["high"], bars["low"], bars["close"])
    _assert_agrees(_run(indicators.Cci(period).update, *hlc), talib.CCI(*hlc, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("fastk", "slowk", "slowd"), [(5, 3, 3), (14, 1, 1), (9, 5, 2)])
def test_stoch_when_random_bars_then_slow_k_and_d_equal_talib(
    seed: int, fastk: int, slowk: int, slowd: int
) -> None:
    bars = _series(seed)
    hlc = (bars["high"], bars["low"], bars["close"])
    ours = _run(indicators.Stoch(fastk, slowk, slowd).update, *hlc)
    k, d = talib.STOCH(*hlc, fastk, slowk, 0, slowd, 0)
    _assert_agrees(_column(ours, 0), k)
    _assert_agrees(_column(ours, 1), d)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("period", "fastk", "fastd"), [(14, 5, 3), (5, 3, 1), (20, 14, 4)])
def test_stochrsi_when_random_walk_then_fast_k_and_d_equal_talib(
    seed: int, period: int, fastk: int, fastd: int
) -> None:
    close = _series(seed)["close"]
    ours = _run(indicators.StochRsi(period, fastk, fastd).update, close)
    k, d = talib.STOCHRSI(close, period, fastk, fastd, 0)
    _assert_agrees(_column(ours, 0), k, scale=100)
    _assert_agrees(_column(ours, 1), d, scale=100)


@pytest.mark.parametrize("seed", SEEDS)
def test_obv_when_random_bars_then_equals_talib(seed: int) -> None:
    bars = _series(seed)
    close = np.round(bars["close"], 1)  # ties in the close, where OBV keeps its value
    ours = _run(indicators.Obv().update, close, bars["volume"])
    _assert_agrees(ours, talib.OBV(close, bars["volume"]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 30])
def test_mfi_when_random_bars_then_equals_talib(seed: int, period: int) -> None:
    bars = _series(seed)
    hlcv = (bars["high"], bars["low"], bars["close"], bars["volume"])
    ours = _run(indicators.Mfi(period).update, *hlcv)
    _assert_agrees(ours, talib.MFI(*hlcv, period), scale=100)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [1, 10, 50])
def test_roc_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Roc(period).update, close), talib.ROC(close, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 50])
def test_willr_when_random_bars_then_equals_talib(seed: int, period: int) -> None:
    bars = _series(seed)
    hlc = (bars["high"], bars["low"], bars["close"])
    _assert_agrees(_run(indicators.WillR(period).update, *hlc), talib.WILLR(*hlc, period))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 14, 25])
def test_aroon_when_random_bars_then_down_and_up_equal_talib(seed: int, period: int) -> None:
    bars = _series(seed)
    high, low = np.round(bars["high"], 0), np.round(bars["low"], 0)  # ties: the latest counts
    ours = _run(indicators.Aroon(period).update, high, low)
    down, up = talib.AROON(high, low, period)
    _assert_agrees(_column(ours, 0), down)
    _assert_agrees(_column(ours, 1), up)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(("acceleration", "maximum"), [(0.02, 0.2), (0.01, 0.1), (0.05, 0.5)])
def test_sar_when_random_bars_then_equals_talib(
    seed: int, acceleration: float, maximum: float
) -> None:
    bars = _series(seed)
    ours = _run(indicators.Sar(acceleration, maximum).update, bars["high"], bars["low"])
    _assert_agrees(ours, talib.SAR(bars["high"], bars["low"], acceleration, maximum))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("period", [2, 15, 30])
def test_trix_when_random_walk_then_equals_talib(seed: int, period: int) -> None:
    close = _series(seed)["close"]
    _assert_agrees(_run(indicators.Trix(period).update, close), talib.TRIX(close, period))


@pytest.mark.parametrize(
    "build",
    [
        lambda: indicators.Dema(0),
        lambda: indicators.Tema(1.5),
        lambda: indicators.Kama(1),
        lambda: indicators.Adx(0),
        lambda: indicators.Cci(1),
        lambda: indicators.Stoch(0, 3, 3),
        lambda: indicators.StochRsi(14, 5, 0),
        lambda: indicators.Mfi(0),
        lambda: indicators.Roc(0),
        lambda: indicators.WillR(0),
        lambda: indicators.Aroon(0),
        lambda: indicators.Sar(0.0, 0.2),
        lambda: indicators.Sar(0.02, float("inf")),
        lambda: indicators.Trix(0),
    ],
)
def test_new_indicator_when_parameters_invalid_then_value_error(
    build: Callable[[], object],
) -> None:
    with pytest.raises(ValueError):
        build()


def test_mfi_and_stoch_when_prices_only_fall_then_exactly_zero_not_a_residue() -> None:
    """Where TA-Lib's slid sums leave 1e-14 or -2e-14, a window with no rising flow is 0."""
    mfi, stoch = indicators.Mfi(3), indicators.Stoch(3, 2, 2)
    rng = np.random.default_rng(7)
    price = 100.0
    for _ in range(40):  # rising first, so the sums have something to leave behind
        price *= 1 + abs(rng.normal(0, 0.01))
        mfi.update(price + 0.1, price - 0.1, price, 1234.5)
        stoch.update(price + 0.1, price - 0.3, price)
    for _ in range(10):
        price *= 1 - abs(rng.normal(0, 0.01)) - 0.01
        value, kd = (
            mfi.update(price + 0.1, price - 0.1, price, 1234.5),
            stoch.update(price + 0.1, price, price),
        )
    assert value == 0.0 and kd == (0.0, 0.0)
