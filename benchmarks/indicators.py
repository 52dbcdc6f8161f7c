"""`indicators`: the cost of one `update` of each incremental indicator, in microseconds.

Each indicator is fed `VALUES` floats of a seeded random walk (prebuilt, so that only `update` is
timed, loop overhead included), with the periods a strategy typically uses; the median of
`ROUNDS` is reported per indicator, and the slowest one is the row with the target.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

from benchmarks.results import Result
from components.strategy import indicators

VALUES = 100_000
ROUNDS = 5
TARGET_US = 2.0


def _cases() -> dict[str, Callable[[], Callable[..., object]]]:
    return {
        "sma(20)": lambda: indicators.Sma(20).update,
        "ema(20)": lambda: indicators.Ema(20).update,
        "wma(20)": lambda: indicators.Wma(20).update,
        "rsi(14)": lambda: indicators.Rsi(14).update,
        "macd(12,26,9)": lambda: indicators.Macd(12, 26, 9).update,
        "bollinger(20,2)": lambda: indicators.Bollinger(20, 2.0).update,
        "stddev(20)": lambda: indicators.StdDev(20).update,
        "zscore(20)": lambda: indicators.ZScore(20).update,
        "realized_vol(20)": lambda: indicators.RealizedVolatility(20).update,
        "max(20)": lambda: indicators.RollingExtreme(20).update,
        "atr(14)": lambda: indicators.Atr(14).update,
        "vwap(20)": lambda: indicators.RollingVwap(20).update,
        "book_imbalance(5)": lambda: indicators.BookImbalance(5).update,
    }


ARITY = {"atr(14)": 3, "vwap(20)": 2, "book_imbalance(5)": 2}


def _time_us(build: Callable[[], Callable[..., object]], inputs: list[tuple[float, ...]]) -> float:
    update = build()
    started = time.perf_counter_ns()
    for args in inputs:
        update(*args)
    return (time.perf_counter_ns() - started) / len(inputs) / 1000


def run() -> list[Result]:
    rng = random.Random(3)
    price = 100.0
    closes = []
    for _ in range(VALUES):
        price *= 1 + rng.gauss(0, 0.01)
        closes.append(price)
    inputs = {
        1: [(c,) for c in closes],
        2: [(c, float(rng.randrange(1, 1000))) for c in closes],
        3: [(c * 1.005, c * 0.995, c) for c in closes],
    }
    costs = {
        name: statistics.median(_time_us(build, inputs[ARITY.get(name, 1)]) for _ in range(ROUNDS))
        for name, build in _cases().items()
    }
    slowest = max(costs, key=costs.__getitem__)
    listing = ", ".join(f"{name} {us:.2f}" for name, us in costs.items())
    return [
        Result(
            name="indicators.update",
            target=f"< {TARGET_US:g} µs per indicator",
            measured=f"{costs[slowest]:.2f} µs (slowest: {slowest})",
            meets=costs[slowest] < TARGET_US,
            note=f"median of {ROUNDS} x {VALUES:,} updates, µs each: {listing}",
            values={name: round(us, 4) for name, us in costs.items()},
        )
    ]
