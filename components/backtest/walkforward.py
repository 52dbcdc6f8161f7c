"""Walk-forward analysis: search each in-sample window, trade the next out-of-sample window with
what it chose, and stitch the out-of-sample runs into one equity curve.

Windows are counted in events (bars): rolling (`in_sample` events, then `out_of_sample`, moved
on by `out_of_sample`) or anchored (the in-sample window always starts at the first event and
grows). Each out-of-sample run starts with the equity the previous one ended with, so the
stitched curve is the concatenation of real runs, exact, not a rescaled one. Each window's
strategy starts cold (its indicators warm up inside the window), as a strategy restarted with
new parameters would. In-sample against out-of-sample figures per window are what shows
overfitting: a search that only fits noise does well in-sample and not out of it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from components.backtest import data, search, stats
from components.backtest.engine import Backtest, EquityPoint
from components.core.errors import ConfigError
from components.strategy.base import load_strategy

SOURCE = "backtest walk-forward"
SHOWN = ("total_return", "sharpe", "max_drawdown", "trades")


@dataclasses.dataclass(frozen=True)
class Window:
    index: int
    in_sample: tuple[int, int]  # event indexes [start, end)
    out_of_sample: tuple[int, int]


def windows(count: int, in_sample: int, out_of_sample: int, anchored: bool) -> list[Window]:
    if in_sample < 2 or out_of_sample < 1:
        raise ConfigError(SOURCE, ["--in-sample must be >= 2 and --out-of-sample >= 1 events"])
    out: list[Window] = []
    start = 0
    while start + in_sample + out_of_sample <= count:
        split = start + in_sample
        first = 0 if anchored else start
        out.append(Window(len(out), (first, split), (split, split + out_of_sample)))
        start += out_of_sample
    if not out:
        raise ConfigError(
            SOURCE,
            [f"{count} events hold no window of {in_sample} + {out_of_sample} events"],
        )
    return out


def _span(events: Sequence[data.Event], bounds: tuple[int, int]) -> list[int]:
    first, last = events[bounds[0]], events[bounds[1] - 1]
    return [_time(first), _time(last)]


def _time(event: data.Event) -> int:
    return event.ts_open_ns if hasattr(event, "ts_open_ns") else event.ts_event_ns  # type: ignore[union-attr]


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    return {name: result.get(name) for name in (*SHOWN, "final_equity")}


def analyse(
    settings: search.SearchSettings,
    events: Sequence[data.Event],
    in_sample: int,
    out_of_sample: int,
    anchored: bool = False,
) -> dict[str, Any]:
    """Per window the chosen parameters and in- vs out-of-sample stats; the stitched curve."""
    search.check(settings)
    if len(settings.objectives) != 1:
        raise ConfigError(SOURCE, ["one --objective: a window chooses one best point"])
    if settings.storage is not None:
        raise ConfigError(SOURCE, ["--storage: each window's search is its own, in memory"])
    rows: list[dict[str, Any]] = []
    curve: list[EquityPoint] = []
    cash = settings.config.initial_cash
    for window in windows(len(events), in_sample, out_of_sample, anchored):
        sample = list(events[window.in_sample[0] : window.in_sample[1]])
        seed = None if settings.seed is None else settings.seed + window.index
        local = dataclasses.replace(settings, study_name=f"window-{window.index}", seed=seed)
        study = search.work(local, sample)
        completed = [t for t in study.trials if t.state.name == "COMPLETE"]
        if not completed:
            raise ConfigError(SOURCE, [f"window {window.index}: no trial completed in-sample"])
        params = {**settings.base_params, **study.best_trial.params}
        chosen = load_strategy(settings.class_path, params, SOURCE)
        inside = stats.compute(Backtest(chosen, settings.config, settings.risk).run(sample))
        config = settings.config.model_copy(update={"initial_cash": cash})
        outside_events = list(events[window.out_of_sample[0] : window.out_of_sample[1]])
        strategy = load_strategy(settings.class_path, params, SOURCE)
        run = Backtest(strategy, config, settings.risk).run(outside_events)
        outside = stats.compute(run)
        curve.extend(run.equity)
        cash = run.book.equity()
        rows.append(
            {
                "window": window.index,
                "in_sample_ns": _span(events, window.in_sample),
                "out_of_sample_ns": _span(events, window.out_of_sample),
                "params": params,
                "in_sample": _figures(inside),
                "out_of_sample": _figures(outside),
            }
        )
    initial = settings.config.initial_cash
    return {
        "objective": settings.objectives[0],
        "anchored": anchored,
        "windows": rows,
        "out_of_sample": {
            "initial_equity": str(initial),
            "final_equity": str(cash),
            "total_return": float(cash / initial - 1),
        },
        "equity": [[point.ts_ns, format(point.equity.normalize(), "f")] for point in curve],
    }
