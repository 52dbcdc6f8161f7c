"""The interface a strategy implements, and how one is loaded from `strategy.class_path`.

A strategy is plain, synchronous logic: it reads bars (and optionally quotes, trades, fills and
timer ticks) and returns an `Intent` from any handler when it wants to trade. It never sees the
bus nor the clock: the engine turns intents into signals, sizes them and asks the risk manager,
and passes the time in. So the same strategy runs unchanged live (`strategy.service`) and in a
backtest (`components.backtest`), where time is simulated.

    class Breakout(Strategy):
        name = "breakout"
        Params = BreakoutParams

        def on_bar(self, bar: Bar) -> Intent | None: ...

`class_path` is `package.module:Class`, `path/to/file.py:Class` for a strategy kept outside
any package (a relative path is taken from the working directory), or a built-in's short name
(`sma_cross`, `breakout`, `mean_reversion`, `onnx`: see `BUILTINS`).
"""

from __future__ import annotations

import abc
import hashlib
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import pydantic

from components.core.errors import ConfigError
from components.core.events import Bar, Fill, Quote, Side, Trade


@dataclass(frozen=True, slots=True)
class Intent:
    """A strategy's wish to buy or sell `symbol`; `reason` says why, for people."""

    symbol: str
    side: Side
    reason: str = ""


class Strategy(abc.ABC):
    """Subclasses name themselves, declare their `Params` model and implement `on_bar`.

    The other handlers are optional; the engines deliver quotes and trades only to a strategy
    that overrides `on_quote` / `on_trade`, and call `on_timer` every `timer_interval_s` seconds
    (of simulated time in a backtest) when that is set.
    """

    name: ClassVar[str]
    Params: ClassVar[type[pydantic.BaseModel]]
    timer_interval_s: ClassVar[float | None] = None

    def __init__(self, params: pydantic.BaseModel) -> None:
        self.params = params

    @abc.abstractmethod
    def on_bar(self, bar: Bar) -> Intent | None:
        """A bar closed; return what to do about it, if anything."""

    def on_quote(self, quote: Quote) -> Intent | None:
        """A quote arrived."""
        return None

    def on_trade(self, trade: Trade) -> Intent | None:
        """A trade printed."""
        return None

    def on_fill(self, fill: Fill) -> Intent | None:
        """One of the system's orders was filled."""
        return None

    def on_timer(self, ts_ns: int) -> Intent | None:
        """`timer_interval_s` has passed; `ts_ns` is the current (possibly simulated) time."""
        return None

    @classmethod
    def handles(cls, hook: str) -> bool:
        """Whether this strategy overrides the optional handler `hook` (e.g. `"on_quote"`)."""
        return getattr(cls, hook) is not getattr(Strategy, hook)


# The strategies shipped here, by the `name` each gives itself.
BUILTINS = {
    "breakout": "components.strategy.breakout:Breakout",
    "mean_reversion": "components.strategy.mean_reversion:MeanReversion",
    "onnx": "components.strategy.onnx_model:OnnxStrategy",
    "sma_cross": "components.strategy.sma_cross:SmaCross",
}


def load_strategy(class_path: str, params: dict[str, Any], source: str = "strategy") -> Strategy:
    """Import `module:Class` (or a built-in by name), validate `params` with its `Params` model
    and build it.

    Every problem is a `ConfigError` naming the field: `strategy.class_path: …` or
    `strategy.params.fast: …`.
    """
    if ":" not in class_path:
        if class_path not in BUILTINS:
            raise ConfigError(
                source,
                [
                    f"strategy.class_path: {class_path!r} is no built-in strategy (one of "
                    f"{', '.join(BUILTINS)}) and not module:Class"
                ],
            )
        class_path = BUILTINS[class_path]
    module_name, _, class_name = class_path.rpartition(":")
    try:
        if module_name.endswith(".py"):
            module = _import_file(Path(module_name))
        elif not module_name or module_name.startswith("."):
            # import_module raises ValueError, or TypeError for a relative name without a package.
            raise ImportError("expected an absolute module name such as package.module")
        else:
            module = importlib.import_module(module_name)
    except (ImportError, OSError, SyntaxError, ValueError) as exc:
        raise ConfigError(
            source, [f"strategy.class_path: cannot import module {module_name!r}: {exc}"]
        ) from exc
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Strategy)):
        found = "nothing" if cls is None else repr(cls)
        raise ConfigError(
            source,
            [f"strategy.class_path: {class_path!r} must name a Strategy subclass (found {found})"],
        )
    try:
        validated = cls.Params.model_validate(params)
    except pydantic.ValidationError as exc:
        raise ConfigError(source, [_describe(error) for error in exc.errors()]) from exc
    interval = cls.timer_interval_s
    if interval is not None and not (isinstance(interval, int | float) and 0 < interval < 1e6):
        raise ConfigError(
            source,
            [f"strategy.class_path: {class_path}.timer_interval_s must be > 0 s (was {interval})"],
        )
    try:
        return cls(validated)
    except ValueError as exc:  # a parameter the model let through and the strategy refuses
        raise ConfigError(source, [f"strategy.params: {class_path} refused them: {exc}"]) from exc


def _import_file(path: Path) -> ModuleType:
    """Import a strategy file once per process, under a name derived from its absolute path."""
    path = path.resolve()
    name = f"_strategy_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"not a Python file: {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before executing: dataclasses and pickling look it up
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def _describe(error: Any) -> str:
    path = ".".join(("strategy", "params", *(str(part) for part in error["loc"])))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in {"missing", "extra_forbidden", "value_error"}:
        message += f" (was {error['input']!r})"
    return f"{path}: {message}"
