"""The interface a strategy implements, and how one is loaded from `strategy.class_path`.

A strategy is plain, synchronous logic: it reads bars (and optionally quotes, trades and fills)
and returns an `Intent` when it wants to trade. It never sees the bus: the engine turns intents
into signals, sizes them and asks the risk manager, so the same strategy runs live and in a
backtest.

    class Breakout(Strategy):
        name = "breakout"
        Params = BreakoutParams

        def on_bar(self, bar: Bar) -> Intent | None: ...
"""

from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
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
    """Subclasses name themselves, declare their `Params` model and implement `on_bar`."""

    name: ClassVar[str]
    Params: ClassVar[type[pydantic.BaseModel]]

    def __init__(self, params: pydantic.BaseModel) -> None:
        self.params = params

    @abc.abstractmethod
    def on_bar(self, bar: Bar) -> Intent | None:
        """A bar closed; return what to do about it, if anything."""

    def on_quote(self, quote: Quote) -> None:  # noqa: B027 (optional hook)
        """A quote arrived."""

    def on_trade(self, trade: Trade) -> None:  # noqa: B027 (optional hook)
        """A trade printed."""

    def on_fill(self, fill: Fill) -> None:  # noqa: B027 (optional hook)
        """One of the system's orders was filled."""


def load_strategy(class_path: str, params: dict[str, Any], source: str = "strategy") -> Strategy:
    """Import `module:Class`, validate `params` with its `Params` model and build it.

    Every problem is a `ConfigError` naming the field: `strategy.class_path: …` or
    `strategy.params.fast: …`.
    """
    module_name, _, class_name = class_path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
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
    return cls(validated)


def _describe(error: Any) -> str:
    path = ".".join(("strategy", "params", *(str(part) for part in error["loc"])))
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] not in {"missing", "extra_forbidden", "value_error"}:
        message += f" (was {error['input']!r})"
    return f"{path}: {message}"
