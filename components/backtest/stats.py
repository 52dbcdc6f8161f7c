"""The statistics of a backtest, from its equity curve and round trips.

Money (final equity, P&L, fees, expectancy) is exact `Decimal`, rounded to the cent only here, for
display. Ratios are floats. Returns are simple returns between consecutive equity points; with `p`
points per year (configured or inferred from the calendar span):

    total_return       final / initial - 1
    annualized_return  mean(r) x p                      (arithmetic)
    cagr               (final / initial) ** (1 / years) - 1, years of calendar time
    volatility         stdev(r, sample) x sqrt(p)
    sharpe             mean(r) / stdev(r) x sqrt(p)     (risk-free rate 0)
    sortino            mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(p)
    calmar             cagr / max_drawdown
    max_drawdown       largest fall from a running peak, as a fraction of the peak
    max_drawdown_duration_s   longest time below a previous peak (to recovery or to the end)
    exposure           share of equity points with a position open
    win_rate, profit_factor (gross profit / gross loss), expectancy (mean P&L per round trip)

A ratio that is undefined (no returns, zero deviation, no losing trade) is `None`, not a made-up
number.
"""

from __future__ import annotations

import itertools
import math
from decimal import Decimal
from typing import Any

from components.backtest.engine import BacktestRun
from components.core.money import round_money

STAT_NAMES = (
    "initial_equity",
    "final_equity",
    "total_return",
    "annualized_return",
    "cagr",
    "volatility",
    "sharpe",
    "sortino",
    "calmar",
    "max_drawdown",
    "max_drawdown_duration_s",
    "trades",
    "win_rate",
    "profit_factor",
    "expectancy",
    "net_pnl",
    "exposure",
    "commissions",
    "fills",
    "rejected_orders",
    "events",
    "periods_per_year",
    "span_days",
)
YEAR_S = 365.25 * 24 * 3600
NS = 1_000_000_000


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def compute(run: BacktestRun) -> dict[str, Any]:
    """The statistics of `run`, keyed by name, in a fixed order."""
    initial = run.config.initial_cash
    points = run.equity
    equity = [float(point.equity) for point in points]
    final = points[-1].equity if points else initial
    returns = [b / a - 1 for a, b in itertools.pairwise(equity) if a > 0]
    span_s = (points[-1].ts_ns - points[0].ts_ns) / NS if len(points) > 1 else 0.0
    years = span_s / YEAR_S
    per_year = run.config.periods_per_year or (len(returns) / years if years > 0 else None)

    total_return = float(final / initial) - 1
    mean = math.fsum(returns) / len(returns) if returns else None
    deviation = (
        math.sqrt(math.fsum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        if mean is not None and len(returns) > 1
        else None
    )
    downside = (
        math.sqrt(math.fsum(min(r, 0.0) ** 2 for r in returns) / len(returns)) if returns else None
    )
    root = math.sqrt(per_year) if per_year else None
    growth = float(final / initial)
    cagr = _cagr(growth, years)
    drawdown, drawdown_s = _drawdown([point.ts_ns for point in points], equity)

    trips = run.round_trips
    wins = [t.pnl for t in trips if t.pnl > 0]
    losses = [t.pnl for t in trips if t.pnl < 0]
    gross_profit = sum(wins, Decimal(0))
    gross_loss = -sum(losses, Decimal(0))
    pnl = sum((t.pnl for t in trips), Decimal(0))

    def annual(value: float | None) -> float | None:
        return None if value is None or root is None else value * root

    return {
        "initial_equity": str(round_money(initial)),
        "final_equity": str(round_money(final)),
        "total_return": total_return,
        "annualized_return": None if mean is None or per_year is None else mean * per_year,
        "cagr": cagr,
        "volatility": annual(deviation),
        "sharpe": annual(_ratio(mean, deviation or 0.0)) if mean is not None else None,
        "sortino": annual(_ratio(mean, downside or 0.0)) if mean is not None else None,
        "calmar": _ratio(cagr, drawdown) if cagr is not None else None,
        "max_drawdown": drawdown,
        "max_drawdown_duration_s": drawdown_s,
        "trades": len(trips),
        "win_rate": len(wins) / len(trips) if trips else None,
        "profit_factor": _ratio(float(gross_profit), float(gross_loss)),
        "expectancy": str(round_money(pnl / len(trips))) if trips else None,
        "net_pnl": str(round_money(pnl)),
        "exposure": sum(p.exposed for p in points) / len(points) if points else 0.0,
        "commissions": str(round_money(run.book.fees)),
        "fills": len(run.fills),
        "rejected_orders": len(run.rejected),
        "events": run.events,
        "periods_per_year": per_year,
        "span_days": span_s / 86_400,
    }


def _cagr(growth: float, years: float) -> float | None:
    """Compounded annual growth; None when undefined, or too large for a float (a gain over a
    few seconds compounded to a year)."""
    if years <= 0 or growth <= 0:
        return None
    try:
        return growth ** (1 / years) - 1
    except OverflowError:
        return None


def _drawdown(times: list[int], equity: list[float]) -> tuple[float, float]:
    """The deepest fall from a peak (fraction) and the longest time under water (seconds)."""
    deepest = 0.0
    longest_ns = 0
    peak = 0.0
    peak_ts = 0
    under = False  # below the peak since it was set
    for ts, value in zip(times, equity, strict=True):
        if value >= peak:
            if under:
                longest_ns = max(longest_ns, ts - peak_ts)
            peak, peak_ts, under = value, ts, False
        elif peak > 0:
            under = True
            deepest = max(deepest, 1 - value / peak)
    if under:
        longest_ns = max(longest_ns, times[-1] - peak_ts)
    return deepest, longest_ns / NS
