"""Parity with a peer: backtesting.py (the `backtesting` package) and our backtest run the same
SMA crossover on backtesting.py's own bundled GOOG sample (2,148 daily bars, a pandas export read
as it is), both filled at the next bar's open, charged a commission rate, sized all-in in whole
shares, long and short; every trade must match: entry and exit bar, size, prices, P&L to the
cent; and so must the final equity, which values the position still open at the last close (ours
`close_at_end=False`, theirs `finalize_trades=finalize`). Closing at the end is where the two differ
by design: backtesting.py's `finalize_trades` fills at the last bar's *open*, after its strategy
saw that bar's close; ours fills at the last price seen, the close.

backtesting.py prices in floats; ours is exact, so P&L and equity are compared to the cent and
prices exactly (GOOG's prices have two decimals, which a float reproduces on output).
"""

from __future__ import annotations

import warnings
from decimal import Decimal
from pathlib import Path
from typing import Any

import backtesting
import pytest

from components.backtest import data, stats
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest
from components.core.events import Bar
from components.strategy.base import load_strategy

FAST, SLOW = 10, 20
CASH = 10_000
RATE = Decimal("0.002")
DAY_NS = 86_400 * 1_000_000_000
CENT = 0.005  # two amounts that round to the same cent differ by less


def _goog() -> Path:
    return Path(backtesting.__file__).parent / "test" / "GOOG.csv"


def _theirs(finalize: bool = False) -> tuple[list[dict[str, Any]], float]:
    """backtesting.py's README example strategy: close, then reverse, on every cross."""
    from backtesting import Backtest as TheirBacktest
    from backtesting import Strategy as TheirStrategy
    from backtesting.lib import crossover
    from backtesting.test import GOOG, SMA

    class SmaCross(TheirStrategy):
        def init(self) -> None:
            self.fast = self.I(SMA, self.data.Close, FAST)
            self.slow = self.I(SMA, self.data.Close, SLOW)

        def next(self) -> None:
            if crossover(self.fast, self.slow):
                self.position.close()
                self.buy()
            elif crossover(self.slow, self.fast):
                self.position.close()
                self.sell()

    engine = TheirBacktest(
        GOOG, SmaCross, cash=CASH, commission=float(RATE), finalize_trades=finalize
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = engine.run()
    trades = [
        {
            "entry_bar": int(row.EntryBar),
            "exit_bar": int(row.ExitBar),
            "size": int(row.Size),
            "entry_price": float(row.EntryPrice),
            "exit_price": float(row.ExitPrice),
            "pnl": float(row.PnL),
        }
        for row in result["_trades"].itertuples()
    ]
    return trades, float(result["Equity Final [$]"])


def _ours(close_at_end: bool = False) -> tuple[list[dict[str, Any]], float]:
    bars = [bar for bar in data.load(_goog()) if isinstance(bar, Bar)]
    index = {bar.ts_open_ns // DAY_NS: i for i, bar in enumerate(bars)}  # session date -> bar
    config = BacktestConfig(
        initial_cash=Decimal(CASH),
        fill="next_open",
        commission_rate=RATE,
        sizing="fraction",
        fraction=Decimal(1),
        allow_short=True,
        on_opposite="flip",
        close_at_end=close_at_end,
    )
    strategy = load_strategy("sma_cross", {"fast": FAST, "slow": SLOW})
    run = Backtest(strategy, config).run(bars)
    trades = [
        {
            "entry_bar": index[trip.entry_ts_ns // DAY_NS],
            "exit_bar": index[trip.exit_ts_ns // DAY_NS],
            "size": int(trip.quantity) * trip.side.sign,
            "entry_price": float(trip.entry_price),
            "exit_price": float(trip.exit_price),
            "pnl": float(trip.pnl),
        }
        for trip in run.round_trips
    ]
    return trades, float(stats.compute(run)["final_equity"])


def test_sma_cross_when_goog_sample_next_open_with_commission_then_same_trades_as_peer() -> None:
    theirs, their_equity = _theirs()
    ours, our_equity = _ours()
    assert len(theirs) > 50  # enough trades, long and short, for the match to mean something
    assert {t["size"] > 0 for t in theirs} == {True, False}
    assert len(ours) == len(theirs)
    for number, (mine, peer) in enumerate(zip(ours, theirs, strict=True), 1):
        where = f"trade {number}: ours {mine}, backtesting.py {peer}"
        assert (mine["entry_bar"], mine["exit_bar"], mine["size"]) == (
            peer["entry_bar"],
            peer["exit_bar"],
            peer["size"],
        ), where
        assert mine["entry_price"] == pytest.approx(peer["entry_price"], rel=1e-12), where
        assert mine["exit_price"] == pytest.approx(peer["exit_price"], rel=1e-12), where
        assert abs(mine["pnl"] - peer["pnl"]) < CENT, where
    assert abs(our_equity - their_equity) < CENT


def test_sma_cross_when_both_close_at_the_end_then_only_the_last_exit_price_differs() -> None:
    """The difference by design: backtesting.py exits at the last bar's open, ours at its close;
    everything before is the same."""
    theirs, _ = _theirs(finalize=True)
    ours, _ = _ours(close_at_end=True)
    assert len(ours) == len(theirs)
    *before, their_last = theirs
    *ours_before, our_last = ours
    assert [(t["entry_bar"], t["exit_bar"], t["size"]) for t in ours_before] == [
        (t["entry_bar"], t["exit_bar"], t["size"]) for t in before
    ]
    last_bar = [bar for bar in data.load(_goog()) if isinstance(bar, Bar)][-1]
    assert our_last["entry_bar"] == their_last["entry_bar"]
    assert our_last["size"] == their_last["size"]
    assert their_last["exit_price"] == float(last_bar.open) == 797.8
    assert our_last["exit_price"] == float(last_bar.close) == 806.19
