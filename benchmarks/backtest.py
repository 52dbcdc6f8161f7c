"""`backtest`: SMA crossover over daily bars through our event-driven backtest, and through
backtesting.py (the `backtesting` package) on the same bars and strategy, in the same run.

The bars are a seeded random walk of `BARS` daily bars, written to a CSV file and loaded by
`backtest.data` (the load rate is reported, not part of the rate). Both engines trade the same
way: SMA(10) crossing SMA(50) of closes, long on an up-cross, short on a down-cross (close, then
reverse), all equity in whole units, filled at the next bar's open, no fees. What is timed is the
run over bars already in memory: `Backtest.run` for ours (strategy, risk limits, matching engine
and position book, equity at every bar, then the stats), `Backtest.run` for backtesting.py (its
own SMA via `self.I`, computed once over the series, then its per-bar loop and its stats). The
median of `ROUNDS` is reported, from the process's CPU time (`time.process_time`: the engines are
single-threaded, and on a shared machine CPU time varies far less than wall time); the round
trips of both are shown as a check that they traded the same signals.
"""

from __future__ import annotations

import math
import random
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.results import Result
from components.backtest import data, stats
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest
from components.strategy.base import load_strategy

BARS = 50_000
ROUNDS = 5
FAST, SLOW = 10, 50
TARGET = 150_000  # bars per second
DAY_S = 86_400


def write_bars(path: Path, count: int = BARS, seed: int = 11) -> None:
    """A daily random walk from 100, 1.2 % a day, prices in cents."""
    rng = random.Random(seed)
    price = 100.0
    lines = ["ts_ns,open,high,low,close,volume"]
    for day in range(count):
        close = max(1.0, price * math.exp(rng.gauss(0.0002, 0.012)))
        high = max(price, close) * (1 + rng.random() * 0.004)
        low = min(price, close) * (1 - rng.random() * 0.004)
        ts_ns = (946_684_800 + day * DAY_S) * 10**9  # from 2000-01-01
        volume = rng.randrange(1_000, 100_000)
        lines.append(f"{ts_ns},{price:.2f},{high:.2f},{low:.2f},{close:.2f},{volume}")
        price = float(f"{close:.2f}")
    path.write_text("\n".join(lines) + "\n")


def _ours(events: list[data.Event]) -> tuple[float, dict[str, Any]]:
    config = BacktestConfig(
        initial_cash=Decimal(1_000_000), sizing="fraction", fraction=Decimal(1), allow_short=True
    )
    strategy = load_strategy("components.strategy.sma_cross:SmaCross", {"fast": FAST, "slow": SLOW})
    started = time.process_time()
    run = Backtest(strategy, config).run(events)
    figures = stats.compute(run)
    return time.process_time() - started, figures


def _theirs(path: Path) -> tuple[float, dict[str, Any]] | None:
    try:
        import pandas as pd
        from backtesting import Backtest as TheirBacktest
        from backtesting import Strategy as TheirStrategy
        from backtesting.lib import crossover
    except ImportError:
        return None

    frame = pd.read_csv(path)
    frame.index = pd.to_datetime(frame.pop("ts_ns"), unit="ns")
    frame.columns = ["Open", "High", "Low", "Close", "Volume"]

    def sma(values: Any, n: int) -> Any:
        return pd.Series(values).rolling(n).mean()

    class SmaCross(TheirStrategy):  # the library's own example strategy, our periods
        def init(self) -> None:
            self.fast = self.I(sma, self.data.Close, FAST)
            self.slow = self.I(sma, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    import warnings

    engine = TheirBacktest(frame, SmaCross, cash=1_000_000, commission=0, finalize_trades=True)
    started = time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = engine.run()
    elapsed = time.process_time() - started
    return elapsed, {"trades": int(result["# Trades"]), "equity": float(result["Equity Final [$]"])}


def run() -> list[Result]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "daily.csv"
        write_bars(path)
        started = time.perf_counter()
        events = data.load(path, symbol="SIM")
        load_s = time.perf_counter() - started
        ours = [_ours(events) for _ in range(ROUNDS)]
        theirs = [t for t in (_theirs(path) for _ in range(ROUNDS)) if t is not None]
    our_s = statistics.median(elapsed for elapsed, _ in ours)
    our_rate = BARS / our_s
    figures = ours[0][1]
    rows = [
        Result(
            name="backtest.sma_cross",
            target=f">= {TARGET:,} bars/s",
            measured=f"{our_rate:,.0f} bars/s",
            meets=our_rate >= TARGET,
            note=(
                f"{BARS:,} daily bars, SMA({FAST})/SMA({SLOW}) long/short, all equity, next "
                f"open; median of {ROUNDS}: {our_s * 1000:.0f} ms of CPU per run (stats included); "
                f"{figures['trades']} round trips, final equity {figures['final_equity']}; "
                f"CSV loaded at {BARS / load_s:,.0f} bars/s (not in the rate)"
            ),
            values={"bars_per_s": our_rate, "run_s": our_s, "load_s": load_s},
        )
    ]
    if theirs:
        their_s = statistics.median(elapsed for elapsed, _ in theirs)
        their_rate = BARS / their_s
        rows.append(
            Result(
                name="backtest.backtesting_py",
                target="context",
                measured=f"{their_rate:,.0f} bars/s",
                meets=None,
                note=(
                    f"backtesting.py on the same bars and strategy, median of {ROUNDS}: "
                    f"{their_s * 1000:.0f} ms of CPU per run; {theirs[0][1]['trades']} trades, "
                    f"final equity {theirs[0][1]['equity']:,.2f}; "
                    f"ours is {our_rate / their_rate:.1f}x"
                ),
                values={"bars_per_s": their_rate, "run_s": their_s},
            )
        )
    else:
        rows.append(
            Result(
                "backtest.backtesting_py",
                "context",
                "not installed",
                None,
                "pip install '.[test]' (make .venv/.installed does) to compare with backtesting.py",
            )
        )
    return rows
