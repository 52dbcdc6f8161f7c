"""Statistics on a known equity curve: returns, volatility, Sharpe, Sortino, CAGR, Calmar against
the `statistics` module and direct arithmetic; undefined ratios are None, not numbers."""

from __future__ import annotations

import math
import statistics
from decimal import Decimal

from components.backtest import stats
from components.backtest.config import BacktestConfig
from components.backtest.engine import BacktestRun, EquityPoint
from components.risk.positions import PositionBook

YEAR_NS = int(365.25 * 86_400 * 1e9)


def _run(equity: list[str], step_ns: int, **config: object) -> BacktestRun:
    points = [EquityPoint(i * step_ns, Decimal(value), False) for i, value in enumerate(equity)]
    cfg = BacktestConfig(initial_cash=Decimal(equity[0]), **config)  # type: ignore[arg-type]
    return BacktestRun("x", cfg, points, [], [], [], len(points), PositionBook(cfg.initial_cash))


def test_compute_when_known_curve_then_ratios_match_their_definitions() -> None:
    run = _run(["100", "110", "99", "108.9", "119.79"], YEAR_NS // 4, periods_per_year=4)
    figures = stats.compute(run)
    returns = [0.1, -0.1, 0.1, 0.1]
    mean, deviation = statistics.fmean(returns), statistics.stdev(returns)
    assert math.isclose(figures["total_return"], 0.1979, rel_tol=1e-12)
    assert math.isclose(figures["annualized_return"], mean * 4, rel_tol=1e-9)
    assert math.isclose(figures["volatility"], deviation * 2, rel_tol=1e-9)
    assert math.isclose(figures["sharpe"], mean / deviation * 2, rel_tol=1e-9)
    downside = math.sqrt(0.01 / 4)
    assert math.isclose(figures["sortino"], mean / downside * 2, rel_tol=1e-9)
    assert math.isclose(figures["cagr"], 1.1979 - 1, rel_tol=1e-9)  # exactly one year
    assert math.isclose(figures["max_drawdown"], 0.1, rel_tol=1e-12)
    assert math.isclose(figures["calmar"], figures["cagr"] / 0.1, rel_tol=1e-12)
    # Under water from the peak at 110 (t=1) until 119.79 passes it (t=4): three quarters.
    assert figures["max_drawdown_duration_s"] == 3 * (YEAR_NS // 4) / 1e9


def test_compute_when_periods_not_given_then_inferred_from_calendar_span() -> None:
    day = 86_400 * 10**9
    run = _run(["100", "101", "102"], day)
    assert math.isclose(stats.compute(run)["periods_per_year"], 365.25, rel_tol=1e-12)


def test_compute_when_flat_curve_and_no_trades_then_undefined_ratios_are_none() -> None:
    figures = stats.compute(_run(["100", "100", "100"], 10**9))
    assert figures["total_return"] == 0.0 and figures["max_drawdown"] == 0.0
    assert figures["sharpe"] is None and figures["sortino"] is None
    assert figures["win_rate"] is None and figures["profit_factor"] is None
    assert figures["expectancy"] is None and figures["trades"] == 0


def test_compute_when_any_run_then_keys_are_the_published_stat_names_in_order() -> None:
    assert tuple(stats.compute(_run(["100", "101"], 10**9))) == stats.STAT_NAMES


def test_compute_when_gain_over_seconds_then_cagr_undefined_not_an_overflow() -> None:
    figures = stats.compute(_run(["100", "150"], 10**9))
    assert figures["cagr"] is None and figures["calmar"] is None
    assert figures["total_return"] == 0.5
