"""Parameter search on optuna: the strategy's own parameter model gives the space, a backtest per
trial gives the objective(s).

- The space: every int, float, bool or Literal field of the strategy's `Params` not fixed by the
  base parameters, with bounds from its constraints (`ge`/`gt`/`le`/`lt`); a bound the model does
  not give is derived from the default (`low = lower bound`, `high = 10 x default`). `--param
  NAME=LOW:HIGH[:STEP]` (or `NAME=A,B,C` for a choice) overrides or adds a dimension.
- Samplers: TPE (default), random and grid (every point of the space; int steps, or a float
  step, or choices). A seed makes a study reproducible in one process.
- Pruning (one objective, not a grid): the backtest reports the return so far (the drawdown so
  far for `max_drawdown`) at `PRUNE_STEPS` points of the data, and a median pruner stops a trial
  that is behind the others at the same point. Several objectives: no pruning, the Pareto front.
- A point the model refuses (`slow <= fast`) or whose stat is undefined (no trade, no Sharpe) is
  a pruned trial with the reason in its user attributes, not a failure.
- Storage: in memory, or a journal file (`--storage`), which is what makes a study resumable
  and lets worker processes (or pods, `backtest.jobs`) share it: each loads the study by name and
  the study stops at `trials` finished trials in all.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import annotated_types
import pydantic

from components.backtest import data, stats
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest
from components.backtest.sweep import LOWER_IS_BETTER
from components.core.config import RiskConfig
from components.core.errors import ConfigError
from components.strategy.base import Strategy, load_strategy

SOURCE = "backtest search"
SAMPLERS = ("tpe", "random", "grid")
PRUNE_STEPS = 10  # intermediate values reported per backtest
DERIVED_HIGH = 10  # an upper bound the model leaves open: this many times the default


@dataclasses.dataclass(frozen=True)
class Dimension:
    """One searched parameter: an int or float range (with a step for a grid), or choices."""

    name: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    integer: bool = False
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: Any) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        assert self.low is not None and self.high is not None
        if self.integer:
            return trial.suggest_int(
                self.name, int(self.low), int(self.high), step=int(self.step or 1)
            )
        return trial.suggest_float(self.name, self.low, self.high, step=self.step)

    def grid(self) -> list[Any]:
        if self.choices is not None:
            return list(self.choices)
        assert self.low is not None and self.high is not None
        if self.integer:
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            raise ConfigError(
                SOURCE, [f"--param {self.name}: a grid of a float needs a step (LOW:HIGH:STEP)"]
            )
        count = math.floor((self.high - self.low) / self.step + 1e-9) + 1
        return [self.low + i * self.step for i in range(count)]


def _bounds(field: Any) -> tuple[float | None, float | None]:
    low = high = None
    for item in field.metadata:
        if isinstance(item, annotated_types.Ge):
            low = float(item.ge)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Gt):
            low = float(item.gt)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Le):
            high = float(item.le)  # type: ignore[arg-type]
        elif isinstance(item, annotated_types.Lt):
            high = float(item.lt)  # type: ignore[arg-type]
    return low, high


def _from_field(name: str, field: Any) -> Dimension | None:
    kind = field.annotation
    if kind is bool:
        return Dimension(name, choices=(False, True))
    if typing.get_origin(kind) is typing.Literal:
        return Dimension(name, choices=typing.get_args(kind))
    if kind not in (int, float):
        return None  # not a number, a flag or a choice: not searched unless --param says so
    low, high = _bounds(field)
    default = field.default if isinstance(field.default, int | float) else None
    if high is None and default is not None:
        high = max(default * DERIVED_HIGH, (low or 0) + 1)
    if low is None and default is not None:
        low = min(default / DERIVED_HIGH, high or default) if kind is float else 0
    if low is None or high is None:
        return None
    if kind is int:
        return Dimension(name, math.ceil(low), math.floor(high), integer=True)
    return Dimension(name, low, high)


def parse_override(spec: str, model: type[pydantic.BaseModel]) -> Dimension:
    """`NAME=LOW:HIGH[:STEP]` or `NAME=A,B,C`; ints stay ints when the field is an int."""
    name, sep, text = spec.partition("=")
    name = name.strip()
    if not sep or not name or not text.strip():
        raise ConfigError(SOURCE, [f"--param {spec!r}: expected NAME=LOW:HIGH[:STEP] or NAME=A,B"])
    field = model.model_fields.get(name)
    if field is None:
        known = ", ".join(model.model_fields)
        raise ConfigError(SOURCE, [f"--param {name}: not a parameter of the strategy ({known})"])
    import yaml

    if "," in text:
        return Dimension(name, choices=tuple(yaml.safe_load(v) for v in text.split(",")))
    parts = text.split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(SOURCE, [f"--param {spec!r}: bounds must be numbers"]) from None
    if len(numbers) not in (2, 3) or numbers[0] > numbers[1]:
        raise ConfigError(SOURCE, [f"--param {spec!r}: expected LOW:HIGH[:STEP], LOW <= HIGH"])
    integer = field.annotation is int
    if integer and any(n != int(n) for n in numbers):
        raise ConfigError(SOURCE, [f"--param {spec!r}: {name} is an integer"])
    step = numbers[2] if len(numbers) == 3 else None
    return Dimension(name, numbers[0], numbers[1], step, integer)


def search_space(
    model: type[pydantic.BaseModel], base: Mapping[str, Any], overrides: Sequence[str] = ()
) -> dict[str, Dimension]:
    """The fields searched: the model's, less those `base` fixes, then the overrides."""
    space = {
        name: dimension
        for name, field in model.model_fields.items()
        if name not in base and (dimension := _from_field(name, field)) is not None
    }
    for spec in overrides:
        dimension = parse_override(spec, model)
        space[dimension.name] = dimension
    if not space:
        raise ConfigError(SOURCE, ["nothing to search: give --param NAME=LOW:HIGH"])
    return space


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    class_path: str
    base_params: dict[str, Any]
    overrides: tuple[str, ...]
    config: BacktestConfig
    objectives: tuple[str, ...] = ("sharpe",)
    sampler: str = "tpe"
    trials: int | None = 50
    timeout_s: float | None = None
    seed: int | None = None
    prune: bool = True
    storage: str | None = None  # a journal file
    study_name: str = "backtest"
    risk: RiskConfig | None = None

    @property
    def directions(self) -> list[str]:
        return ["minimize" if o in LOWER_IS_BETTER else "maximize" for o in self.objectives]


def check(settings: SearchSettings) -> None:
    known = set(stats.STAT_NAMES)
    unknown = [o for o in settings.objectives if o not in known]
    if unknown:
        raise ConfigError(
            SOURCE,
            [f"--objective: unknown stat {unknown[0]!r} (one of {', '.join(sorted(known))})"],
        )
    if settings.sampler not in SAMPLERS:
        raise ConfigError(SOURCE, [f"--sampler: one of {', '.join(SAMPLERS)}"])
    if settings.trials is None and settings.timeout_s is None and settings.sampler != "grid":
        raise ConfigError(SOURCE, ["give --trials or --timeout (or a grid, which ends by itself)"])


def strategy_model(class_path: str) -> type[pydantic.BaseModel]:
    """The strategy's `Params` model, from a throwaway instance of its defaults' class."""
    module_name, _, class_name = class_path.rpartition(":")
    import importlib

    if module_name.endswith(".py"):
        from components.strategy import base

        module: Any = base._import_file(Path(module_name))
    else:
        try:
            module = importlib.import_module(module_name)
        except (ImportError, ValueError) as exc:
            raise ConfigError(
                SOURCE, [f"--strategy: cannot import {module_name!r}: {exc}"]
            ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        raise ConfigError(SOURCE, [f"--strategy: {class_path!r} is not a Strategy subclass"])
    return cls.Params


def _sampler(settings: SearchSettings, space: Mapping[str, Dimension], seed: int | None) -> Any:
    import optuna

    if settings.sampler == "grid":
        grid = {name: dimension.grid() for name, dimension in space.items()}
        return optuna.samplers.GridSampler(grid, seed=seed)
    if settings.sampler == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _storage(path: str | None) -> Any:
    import optuna

    if path is None:
        return optuna.storages.InMemoryStorage()
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    return JournalStorage(JournalFileBackend(path))


def open_study(settings: SearchSettings, space: Mapping[str, Dimension], seed: int | None) -> Any:
    """The study by name in the storage: made on first use, loaded (resumed) after."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2)
        if settings.prune and len(settings.objectives) == 1 and settings.sampler != "grid"
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        storage=_storage(settings.storage),
        study_name=settings.study_name,
        directions=settings.directions,
        sampler=_sampler(settings, space, seed),
        pruner=pruner,
        load_if_exists=True,
    )


def _running(run: Backtest, objective: str, initial: float) -> float | None:
    """The value reported so far: return, or the max drawdown for `max_drawdown`."""
    points = run.equity
    if not points:
        return None
    if objective == "max_drawdown":
        peak, worst = initial, 0.0
        for point in points:
            value = float(point.equity)
            peak = max(peak, value)
            worst = max(worst, 1 - value / peak)
        return worst
    return float(points[-1].equity) / initial - 1


Objective = Callable[[Any], float | tuple[float, ...]]


def objective_of(settings: SearchSettings, events: Sequence[data.Event]) -> Objective:
    import optuna

    space = search_space(
        strategy_model(settings.class_path), settings.base_params, settings.overrides
    )
    single = len(settings.objectives) == 1
    every = max(1, len(events) // PRUNE_STEPS)
    initial = float(settings.config.initial_cash)

    def objective(trial: Any) -> float | tuple[float, ...]:
        params = {**settings.base_params}
        params.update({name: d.suggest(trial) for name, d in space.items()})
        try:
            strategy = load_strategy(settings.class_path, params, SOURCE)
        except ConfigError as exc:
            trial.set_user_attr("reason", str(exc))
            raise optuna.TrialPruned(str(exc)) from None
        backtest = Backtest(strategy, settings.config, settings.risk)
        step = iter(range(1, PRUNE_STEPS + 1))

        def progress(done: int) -> None:
            if not single or not settings.prune or settings.sampler == "grid":
                return  # a grid is every point: nothing is cut short
            if done >= len(events):
                return
            value = _running(backtest, settings.objectives[0], initial)
            if value is not None and math.isfinite(value):
                trial.report(value, next(step, PRUNE_STEPS))
                if trial.should_prune():
                    raise optuna.TrialPruned(f"behind the median after {done} events")

        figures = stats.compute(backtest.run(events, progress, progress_every=every))
        values = []
        for name in settings.objectives:
            value = figures.get(name)
            number = float(value) if isinstance(value, int | float | str | Decimal) else math.nan
            if not math.isfinite(number):
                trial.set_user_attr("reason", f"{name} undefined")
                raise optuna.TrialPruned(f"{name} undefined")
            trial.set_user_attr(name, number)
            values.append(number)
        for name in ("total_return", "max_drawdown", "trades"):
            if name in figures and figures[name] is not None:
                trial.set_user_attr(name, float(figures[name]))
        return values[0] if single else tuple(values)

    return objective


def _finished(study: Any) -> int:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=done))


def work(settings: SearchSettings, events: Sequence[data.Event], worker: int = 0) -> Any:
    """One worker: optimise the shared study until `trials` are finished in all (or timeout)."""
    import optuna

    space = search_space(
        strategy_model(settings.class_path), settings.base_params, settings.overrides
    )
    seed = None if settings.seed is None else settings.seed + worker
    study = open_study(settings, space, seed)
    callbacks = []
    if settings.trials is not None:
        callbacks.append(
            optuna.study.MaxTrialsCallback(
                settings.trials,
                states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED),
            )
        )
    left = None if settings.trials is None else settings.trials - _finished(study)
    if left is None or left > 0:
        study.optimize(
            objective_of(settings, events),
            n_trials=left,
            timeout=settings.timeout_s,
            callbacks=callbacks,
            gc_after_trial=False,
        )
    return study


def summary(study: Any, objectives: Sequence[str]) -> dict[str, Any]:
    """Best trial (one objective) or the Pareto front (several), and the counts by state."""
    import optuna

    states: dict[str, int] = {}
    for trial in study.get_trials(deepcopy=False):
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        best: list[Any] = []
    elif len(objectives) == 1:
        best = [study.best_trial]
    else:
        best = sorted(study.best_trials, key=lambda t: t.number)
    return {
        "study": study.study_name,
        "objectives": list(objectives),
        "trials": states,
        "best" if len(objectives) == 1 else "pareto_front": [
            {
                "trial": trial.number,
                "params": trial.params,
                "values": dict(zip(objectives, trial.values, strict=True)),
            }
            for trial in best
        ],
    }
