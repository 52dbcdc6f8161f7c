"""A parameter sweep: one backtest per point of a grid, in parallel processes, ranked by a stat.

Each worker process loads the data once (an initializer), then runs the points it is given; a
point's result is its stats. Every point's parameters are validated by the strategy's own model
in the parent before any process starts, so a bad grid is one config error, not N failures. The
ranking is stable (ties keep grid order) and puts points whose stat is undefined last.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from components.backtest import data, stats
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest
from components.core.config import RiskConfig
from components.strategy.base import load_strategy

# Stats where less is better: the ranking puts the smallest first.
LOWER_IS_BETTER = frozenset(
    {"max_drawdown", "max_drawdown_duration_s", "volatility", "commissions", "rejected_orders"}
)

_events: list[data.Event] = []  # the data, loaded once per worker process


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first name varying slowest."""
    names = list(grid)
    return [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]


def _load(paths: Sequence[str], symbol: str | None, timeframe_s: int | None) -> None:
    global _events
    _events = data.load_all(paths, symbol, timeframe_s)


def run_point(
    class_path: str,
    params: dict[str, Any],
    config: BacktestConfig,
    risk: RiskConfig | None = None,
) -> dict[str, Any]:
    strategy = load_strategy(class_path, params)
    return stats.compute(Backtest(strategy, config, risk).run(_events))


def sweep(
    class_path: str,
    base_params: Mapping[str, Any],
    grid: Mapping[str, Sequence[Any]],
    config: BacktestConfig,
    paths: Sequence[str],
    *,
    sort_by: str = "sharpe",
    risk: RiskConfig | None = None,
    workers: int | None = None,
    symbol: str | None = None,
    timeframe_s: int | None = None,
    done: Callable[[int], None] | None = None,
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(params, stats) of every grid point, best first by `sort_by`."""
    points = [{**base_params, **point} for point in grid_points(grid)]
    for point in points:
        load_strategy(class_path, point)  # a bad point is a ConfigError now, naming the field
    workers = max(1, min(workers or os.cpu_count() or 1, len(points)))
    # spawn: workers start clean (not a copy of this process and its threads) and end with the
    # pool, leaving no server process behind.
    context = multiprocessing.get_context("spawn")
    results: list[dict[str, Any] | None] = [None] * len(points)
    with concurrent.futures.ProcessPoolExecutor(
        workers,
        mp_context=context,
        initializer=_load,
        initargs=([str(p) for p in paths], symbol, timeframe_s),
    ) as pool:
        futures = {
            pool.submit(run_point, class_path, point, config, risk): index
            for index, point in enumerate(points)
        }
        for finished, future in enumerate(concurrent.futures.as_completed(futures), 1):
            results[futures[future]] = future.result()
            if done is not None:
                done(finished)
    ranked = [(point, result) for point, result in zip(points, results, strict=True) if result]
    return rank(ranked, sort_by)


def rank(
    rows: list[tuple[dict[str, Any], dict[str, Any]]], sort_by: str
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    sign = 1 if sort_by in LOWER_IS_BETTER else -1

    def key(row: tuple[dict[str, Any], dict[str, Any]]) -> tuple[bool, float]:
        value = row[1].get(sort_by)
        if value is None:
            return (True, 0.0)
        return (False, sign * float(value))

    return sorted(rows, key=key)
