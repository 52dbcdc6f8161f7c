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


DAY = 86_400 * 10**9


def test_compute_when_position_open_at_end_then_shown_apart_and_in_net_pnl() -> None:
    """The third of test_engine's hand-computed trades, left open: long 68 from 90 (fee 7.12),
    last close 85; counts and sums over the two closed trades only."""
    from tests.unit.backtest.test_engine import HAND, THREE_SIGNALS, THREE_TRADES, run

    done, _ = run(THREE_TRADES, THREE_SIGNALS, **HAND, close_at_end=False)
    figures = stats.compute(done)
    assert figures["trades"] == 2 and figures["open_positions"] == 1
    assert figures["realized_pnl"] == "2305.77"  # 967.22 + 1,338.55
    assert figures["open_pnl"] == "-347.12"  # 68 x (85 - 90) - 7.12
    assert figures["net_pnl"] == "1958.65" == str(Decimal("2305.77") + Decimal("-347.12"))
    assert figures["final_equity"] == "11958.65"
    assert figures["commissions"] == "24.23"  # 12.78 + 11.45: the trades counted
    assert figures["open_commissions"] == "7.12"
    (position,) = stats.open_positions(done)
    assert (position.symbol, position.quantity, position.avg_price) == ("AAPL", 68, 90)
    assert (position.last_price, position.pnl) == (85, Decimal("-347.120"))


def test_compute_when_three_known_trades_then_trade_figures_match_their_definitions() -> None:
    from tests.unit.backtest.test_engine import HAND, THREE_SIGNALS, THREE_TRADES, run

    done, _ = run(THREE_TRADES, THREE_SIGNALS, **HAND)
    figures = stats.compute(done)
    pnls = [967.22, 1338.55, -353.90]
    returns = [967.22 / 4900, 1338.55 / 5400, -353.90 / 6120]
    assert math.isclose(figures["best_trade"], max(returns), rel_tol=1e-12)
    assert math.isclose(figures["worst_trade"], min(returns), rel_tol=1e-12)
    assert math.isclose(figures["avg_trade"], statistics.fmean(returns), rel_tol=1e-12)
    assert figures["max_trade_duration_s"] == 3 * 86_400
    assert math.isclose(figures["avg_trade_duration_s"], 7 / 3 * 86_400, rel_tol=1e-12)
    sqn = math.sqrt(3) * statistics.fmean(pnls) / statistics.stdev(pnls)
    assert math.isclose(figures["sqn"], sqn, rel_tol=1e-12)
    kelly = 2 / 3 - (1 / 3) / (((967.22 + 1338.55) / 2) / 353.90)
    assert math.isclose(figures["kelly"], kelly, rel_tol=1e-12)
    assert figures["open_positions"] == 0 and figures["open_pnl"] == "0.00"


def test_compute_when_returns_are_levered_benchmark_then_beta_and_alpha_recovered() -> None:
    """r = 0.001 + 1.5 b at every bar: beta 1.5, alpha 0.001 a bar, x 252 a year."""
    moves = [0.01, -0.02, 0.03, 0.005, -0.01]
    benchmark, ours = [100.0], [1000.0]
    for b in moves:
        benchmark.append(benchmark[-1] * (1 + b))
        ours.append(ours[-1] * (1 + 0.001 + 1.5 * b))
    run = _run([f"{v:.12f}" for v in ours], DAY, periods_per_year=252)
    closes = {"X": [(i * DAY, Decimal(f"{v:.12f}")) for i, v in enumerate(benchmark)]}
    figures = stats.compute(run, closes)
    assert math.isclose(figures["beta"], 1.5, rel_tol=1e-9)
    assert math.isclose(figures["alpha"], 0.001 * 252, rel_tol=1e-6)
    assert math.isclose(figures["buy_hold_return"], benchmark[-1] / 100 - 1, rel_tol=1e-12)
    assert stats.compute(run)["beta"] is None  # no prices, no benchmark


def test_compute_when_three_drawdowns_then_average_depth_and_duration() -> None:
    """100 -> 90 -> 100 (2 days), 100 -> 80 -> 120 (3 days), 120 -> 110 at the end (1 day)."""
    figures = stats.compute(_run(["100", "90", "100", "80", "88", "120", "110"], DAY))
    assert math.isclose(figures["avg_drawdown"], (0.1 + 0.2 + 10 / 120) / 3, rel_tol=1e-12)
    assert math.isclose(figures["max_drawdown"], 0.2, rel_tol=1e-12)
    assert figures["avg_drawdown_duration_s"] == 2 * 86_400
    assert figures["max_drawdown_duration_s"] == 3 * 86_400


def test_display_when_fraction_or_seconds_then_percent_or_days() -> None:
    assert stats.display("total_return", 4.6152) == "461.52 %"
    assert stats.display("max_drawdown_duration_s", 3 * 86_400.0) == "3.0 d"
    assert stats.display("sharpe", None) == "-"
    assert stats.display("trades", 1234) == "1,234"
    assert all(figure.definition for figure in stats.FIGURES.values())
