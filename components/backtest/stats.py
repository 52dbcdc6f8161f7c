"""The statistics of a backtest, from its equity curve, its round trips and what is still open.

Every figure is in `FIGURES` with its unit and its definition, which the table and the HTML
report print beside it. Keys keep machine units (fractions, seconds) so that sweeps and searches
rank on them; people see percentages and days (`display`).

Which trades: `trades` counts the round trips closed during the run (with `close_at_end`, also
those closed at the end), and every per-trade figure (`win_rate`, `profit_factor`, `sqn`, ...,
`commissions`) is over that same set. A position still open at the end is shown apart:
`open_positions`, its `open_pnl` (unrealized P&L at the last price, less the fees paid opening
it) and `open_commissions`; `net_pnl` = `realized_pnl` + `open_pnl` = final - initial equity.

Returns: `r` are the simple (arithmetic) returns between consecutive equity points, one per bar;
with `p` points per year (configured or inferred from the calendar span), risk-free rate 0:

    annualized_return  mean(r) x p
    volatility         stdev(r, sample) x sqrt(p)
    sharpe             mean(r) / stdev(r) x sqrt(p)
    sortino            mean(r) / sqrt(mean(min(r, 0)^2)) x sqrt(p)
    cagr               (final / initial) ^ (1 / years) - 1, years of calendar time
    calmar             cagr / max_drawdown

(backtesting.py annualizes geometric daily returns instead; both are in use, the numbers differ
a little, so the convention is stated next to the figures.) The buy-and-hold benchmark holds an
equal share of each symbol from its first price to its last; `b` are its returns at the same
points; `beta` = cov(r, b) / var(b), `alpha` = (mean(r) - beta x mean(b)) x p (Jensen's,
annualized). `profit_factor` is in money (gross profit / gross loss of the closed trades), not
the per-trade percentages backtesting.py divides.

A ratio that is undefined (no returns, zero deviation, no losing trade, no benchmark) is
`None`, not a made-up number. Money is exact `Decimal`, rounded to the cent only here.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Literal, NamedTuple

from components.backtest.engine import BacktestRun, Event
from components.core.events import Bar, Quote
from components.core.money import round_money

Unit = Literal["money", "fraction", "ratio", "count", "seconds", "days"]


class Figure(NamedTuple):
    unit: Unit  # how it is shown: fraction as %, seconds as days
    definition: str


FIGURES: dict[str, Figure] = {
    "initial_equity": Figure("money", "cash at the start"),
    "final_equity": Figure("money", "cash plus open positions at their last price, at the end"),
    "net_pnl": Figure("money", "final - initial equity = realized_pnl + open_pnl"),
    "realized_pnl": Figure("money", "sum of the closed trades' P&L, net of their fees"),
    "open_pnl": Figure(
        "money", "open positions' unrealized P&L at the last price, less the fees paid opening them"
    ),
    "open_positions": Figure("count", "positions still open at the end (not in `trades`)"),
    "total_return": Figure("fraction", "final / initial equity - 1"),
    "buy_hold_return": Figure(
        "fraction", "benchmark: an equal share of each symbol bought at its first price, held"
    ),
    "annualized_return": Figure("fraction", "mean of simple per-bar returns x bars per year"),
    "cagr": Figure("fraction", "(final / initial) ^ (1 / years) - 1, calendar years"),
    "volatility": Figure("fraction", "sample stdev of simple per-bar returns x sqrt(bars/year)"),
    "sharpe": Figure("ratio", "mean / stdev of simple per-bar returns x sqrt(bars/year), rf 0"),
    "sortino": Figure("ratio", "mean / downside deviation of per-bar returns x sqrt(bars/year)"),
    "calmar": Figure("ratio", "cagr / max_drawdown"),
    "alpha": Figure("fraction", "Jensen's alpha vs buy-and-hold a year: (mean r - beta mean b) p"),
    "beta": Figure("ratio", "cov(r, b) / var(b), per-bar returns against buy-and-hold"),
    "max_drawdown": Figure("fraction", "largest fall from a running peak, of the peak"),
    "avg_drawdown": Figure("fraction", "mean depth of the drawdowns (peak to recovery or end)"),
    "max_drawdown_duration_s": Figure("seconds", "longest time below a previous peak"),
    "avg_drawdown_duration_s": Figure("seconds", "mean time of a drawdown, peak to recovery"),
    "trades": Figure("count", "round trips closed (the set every trade figure is over)"),
    "win_rate": Figure("fraction", "share of closed trades with P&L > 0"),
    "best_trade": Figure("fraction", "best closed trade's P&L net of fees / its entry value"),
    "worst_trade": Figure("fraction", "worst closed trade's P&L net of fees / its entry value"),
    "avg_trade": Figure("fraction", "arithmetic mean of the closed trades' returns"),
    "max_trade_duration_s": Figure("seconds", "longest closed trade, entry fill to exit fill"),
    "avg_trade_duration_s": Figure("seconds", "mean closed trade duration"),
    "profit_factor": Figure("ratio", "gross profit / gross loss of closed trades, in money"),
    "expectancy": Figure("money", "mean P&L per closed trade"),
    "sqn": Figure("ratio", "sqrt(trades) x mean / stdev (sample) of closed trades' P&L"),
    "kelly": Figure("fraction", "win_rate - (1 - win_rate) / (mean win / mean loss), in money"),
    "exposure": Figure("fraction", "share of equity points with a position open"),
    "commissions": Figure("money", "fees of the closed trades, entry and exit"),
    "open_commissions": Figure("money", "fees paid opening the positions still open"),
    "fills": Figure("count", "fills, of closed and open trades"),
    "rejected_orders": Figure("count", "orders the risk limits or the exchange refused"),
    "events": Figure("count", "market events read"),
    "periods_per_year": Figure("ratio", "equity points per year, configured or inferred"),
    "span_days": Figure("days", "calendar time from the first equity point to the last"),
}
STAT_NAMES = tuple(FIGURES)
YEAR_S = 365.25 * 24 * 3600
DAY_S = 86_400
NS = 1_000_000_000
ZERO = Decimal(0)

Closes = Mapping[str, Sequence[tuple[int, Decimal]]]


def closes_of(events: Iterable[Event]) -> dict[str, list[tuple[int, Decimal]]]:
    """Each symbol's prices in time order: bar closes, trade prices, quote mids."""
    series: dict[str, list[tuple[int, Decimal]]] = {}
    for event in events:
        if isinstance(event, Bar):
            point = (event.ts_close_ns, event.close)
        elif isinstance(event, Quote):
            point = (event.ts_event_ns, event.mid)
        else:
            point = (event.ts_event_ns, event.price)
        series.setdefault(event.symbol, []).append(point)
    return series


def display(name: str, value: Any) -> str:
    """A figure for people: fractions as percentages, seconds as days, `-` when undefined."""
    if value is None:
        return "-"
    unit = FIGURES[name].unit if name in FIGURES else "ratio"
    if unit == "fraction":
        return f"{value * 100:,.2f} %"
    if unit == "seconds":
        return f"{value / DAY_S:,.1f} d"
    if unit == "days":
        return f"{value:,.1f} d"
    if isinstance(value, float):
        return f"{value:,.3f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


def compute(run: BacktestRun, closes: Closes | None = None) -> dict[str, Any]:
    """The statistics of `run`, keyed by name, in `STAT_NAMES` order; with `closes` (the prices
    the run saw, `closes_of(events)`), also the buy-and-hold benchmark, alpha and beta."""
    initial = run.config.initial_cash
    points = run.equity
    times = [point.ts_ns for point in points]
    equity = [float(point.equity) for point in points]
    final = points[-1].equity if points else initial
    returns = [b / a - 1 for a, b in itertools.pairwise(equity) if a > 0]
    span_s = (times[-1] - times[0]) / NS if len(points) > 1 else 0.0
    years = span_s / YEAR_S
    per_year = run.config.periods_per_year or (len(returns) / years if years > 0 else None)

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
    cagr = _cagr(float(final / initial), years)
    drawdowns = _drawdowns(times, equity)
    deepest = max((depth for depth, _ in drawdowns), default=0.0)

    def annual(value: float | None) -> float | None:
        return None if value is None or root is None else value * root

    benchmark = _benchmark(times, closes) if closes else None
    buy_hold, alpha, beta = _against(benchmark, equity, per_year)
    trips = _trades(run)
    opened = _open(run)
    return {
        "initial_equity": str(round_money(initial)),
        "final_equity": str(round_money(final)),
        "net_pnl": str(round_money(final - initial)),
        "realized_pnl": trips["realized_pnl"],
        "open_pnl": str(round_money(opened[1])),
        "open_positions": opened[0],
        "total_return": float(final / initial) - 1,
        "buy_hold_return": buy_hold,
        "annualized_return": None if mean is None or per_year is None else mean * per_year,
        "cagr": cagr,
        "volatility": annual(deviation),
        "sharpe": annual(_ratio(mean, deviation or 0.0)) if mean is not None else None,
        "sortino": annual(_ratio(mean, downside or 0.0)) if mean is not None else None,
        "calmar": _ratio(cagr, deepest) if cagr is not None else None,
        "alpha": alpha,
        "beta": beta,
        "max_drawdown": deepest,
        "avg_drawdown": (statistics.fmean(depth for depth, _ in drawdowns) if drawdowns else 0.0),
        "max_drawdown_duration_s": max((s for _, s in drawdowns), default=0.0),
        "avg_drawdown_duration_s": (
            statistics.fmean(s for _, s in drawdowns) if drawdowns else 0.0
        ),
        **{name: trips[name] for name in _TRADE_FIGURES},
        "exposure": sum(p.exposed for p in points) / len(points) if points else 0.0,
        "commissions": trips["commissions"],
        "open_commissions": str(round_money(opened[2])),
        "fills": len(run.fills),
        "rejected_orders": len(run.rejected),
        "events": run.events,
        "periods_per_year": per_year,
        "span_days": span_s / DAY_S,
    }


_TRADE_FIGURES = (
    "trades",
    "win_rate",
    "best_trade",
    "worst_trade",
    "avg_trade",
    "max_trade_duration_s",
    "avg_trade_duration_s",
    "profit_factor",
    "expectancy",
    "sqn",
    "kelly",
)


def _trades(run: BacktestRun) -> dict[str, Any]:
    """The per-trade figures, every one over the closed round trips."""
    trips = run.round_trips
    pnls = [t.pnl for t in trips]
    wins = [p for p in pnls if p > 0]
    losses = [-p for p in pnls if p < 0]
    gross_profit, gross_loss = sum(wins, ZERO), sum(losses, ZERO)
    total = sum(pnls, ZERO)
    returns = [float(t.pnl / (t.entry_price * t.quantity)) for t in trips]
    durations = [(t.exit_ts_ns - t.entry_ts_ns) / NS for t in trips]
    floats = [float(p) for p in pnls]
    spread = statistics.stdev(floats) if len(floats) > 1 else 0.0
    win_rate = len(wins) / len(trips) if trips else None
    kelly = None
    if wins and losses and win_rate is not None:
        payoff = float(gross_profit / len(wins)) / float(gross_loss / len(losses))
        kelly = win_rate - (1 - win_rate) / payoff
    return {
        "trades": len(trips),
        "win_rate": win_rate,
        "best_trade": max(returns, default=None),
        "worst_trade": min(returns, default=None),
        "avg_trade": statistics.fmean(returns) if returns else None,
        "max_trade_duration_s": max(durations, default=None),
        "avg_trade_duration_s": statistics.fmean(durations) if durations else None,
        "profit_factor": _ratio(float(gross_profit), float(gross_loss)),
        "expectancy": str(round_money(total / len(trips))) if trips else None,
        "sqn": (math.sqrt(len(floats)) * statistics.fmean(floats) / spread if spread > 0 else None),
        "kelly": kelly,
        "realized_pnl": str(round_money(total)),
        "commissions": str(round_money(sum((t.fees for t in trips), ZERO))),
    }


class OpenPosition(NamedTuple):
    symbol: str
    quantity: Decimal  # signed: negative is short
    entry_ts_ns: int  # the fill that opened it
    avg_price: Decimal
    last_price: Decimal | None
    fees: Decimal  # paid opening (and adding to) it
    pnl: Decimal  # unrealized at the last price, less `fees`


def open_positions(run: BacktestRun) -> list[OpenPosition]:
    """The positions still open at the end (none with `close_at_end`), by symbol."""
    since: dict[str, tuple[int, Decimal]] = {}  # symbol -> (opened at, fees since)
    held: dict[str, Decimal] = {}
    for fill in run.fills:
        before = held.get(fill.symbol, ZERO)
        after = held[fill.symbol] = before + fill.quantity * fill.side.sign
        if before == 0 or before * after < 0:
            since[fill.symbol] = (fill.ts_event_ns, fill.fee)
        elif after != 0:
            opened_ns, fees = since[fill.symbol]
            since[fill.symbol] = (opened_ns, fees + fill.fee)
    positions = []
    for symbol in sorted(run.book.holdings):
        holding = run.book.holdings[symbol]
        if not holding.quantity:
            continue
        mark = run.book.marks.get(symbol)
        opened_ns, fees = since.get(symbol, (0, ZERO))
        positions.append(
            OpenPosition(
                symbol=symbol,
                quantity=holding.quantity,
                entry_ts_ns=opened_ns,
                avg_price=holding.avg_price,
                last_price=mark,
                fees=fees,
                pnl=holding.unrealized_pnl(mark) - fees,
            )
        )
    return positions


def _open(run: BacktestRun) -> tuple[int, Decimal, Decimal]:
    positions = open_positions(run)
    return (
        len(positions),
        sum((p.pnl for p in positions), ZERO),
        sum((p.fees for p in positions), ZERO),
    )


def _benchmark(times: Sequence[int], closes: Closes) -> list[float] | None:
    """Buy and hold at each equity point: the mean over symbols of price / first price (1
    before a symbol's first price)."""
    if not times:
        return None
    curves = []
    for series in closes.values():
        if not series:
            continue
        first = float(series[0][1])
        curve, index, value = [], 0, 1.0
        for ts in times:
            while index < len(series) and series[index][0] <= ts:
                value = float(series[index][1]) / first
                index += 1
            curve.append(value)
        curves.append(curve)
    if not curves:
        return None
    return [math.fsum(column) / len(curves) for column in zip(*curves, strict=True)]


def _against(
    benchmark: list[float] | None, equity: list[float], per_year: float | None
) -> tuple[float | None, float | None, float | None]:
    """The benchmark's total return, and the strategy's alpha and beta against it."""
    if not benchmark:
        return None, None, None
    total = benchmark[-1] / benchmark[0] - 1
    pairs = [
        (s1 / s0 - 1, b1 / b0 - 1)
        for (s0, s1), (b0, b1) in zip(
            itertools.pairwise(equity), itertools.pairwise(benchmark), strict=True
        )
        if s0 > 0 and b0 > 0
    ]
    if len(pairs) < 2:
        return total, None, None
    ours, theirs = [p[0] for p in pairs], [p[1] for p in pairs]
    variance = statistics.variance(theirs)
    if variance <= 0:
        return total, None, None
    beta = statistics.covariance(ours, theirs) / variance
    alpha = (
        None
        if per_year is None
        else (statistics.fmean(ours) - beta * statistics.fmean(theirs)) * per_year
    )
    return total, alpha, beta


def _cagr(growth: float, years: float) -> float | None:
    """Compounded annual growth; None when undefined, or too large for a float (a gain over a
    few seconds compounded to a year)."""
    if years <= 0 or growth <= 0:
        return None
    try:
        return growth ** (1 / years) - 1
    except OverflowError:
        return None


def _drawdowns(times: list[int], equity: list[float]) -> list[tuple[float, float]]:
    """Every drawdown as (depth as a fraction of its peak, seconds from the peak to the
    recovery, or to the end if it has not recovered)."""
    episodes: list[tuple[float, float]] = []
    peak = 0.0
    peak_ts = 0
    depth = 0.0  # of the drawdown under way; 0 while at a peak
    for ts, value in zip(times, equity, strict=True):
        if value >= peak:
            if depth > 0:
                episodes.append((depth, (ts - peak_ts) / NS))
            peak, peak_ts, depth = value, ts, 0.0
        elif peak > 0:
            depth = max(depth, 1 - value / peak)
    if depth > 0:
        episodes.append((depth, (times[-1] - peak_ts) / NS))
    return episodes
