"""The simple-moving-average crossover: buy when the fast average of closes crosses above the
slow one, sell when it crosses below.

Both averages are running sums over a window (O(1) per bar) in exact `Decimal`; they are compared
as `fast_sum * slow` against `slow_sum * fast`, so no division ever rounds a tie into a cross.
Nothing is emitted until both windows are full. A cross is a change of side: the first full
window only sets the side, and bars where the averages are equal keep the previous side, so a
touch without a cross signals nothing.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.events import Bar, Side
from components.strategy.base import Intent, Strategy


class SmaCrossParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    fast: int = Field(3, ge=1, description="Bars in the fast average.")
    slow: int = Field(8, ge=2, description="Bars in the slow average; more than `fast`.")

    @pydantic.field_validator("slow")
    @classmethod
    def _slow_exceeds_fast(cls, slow: int, info: pydantic.ValidationInfo) -> int:
        fast = info.data.get("fast")
        if fast is not None and slow <= fast:
            raise ValueError(f"must be greater than fast ({fast}) (was {slow})")
        return slow


@dataclass(slots=True)
class _Averages:
    """The last `slow` closes of one symbol (the fast window is their tail) and both sums."""

    closes: deque[Decimal]
    fast_sum: Decimal = Decimal(0)
    slow_sum: Decimal = Decimal(0)
    side: int = 0  # +1 fast above slow, -1 below, 0 not known yet


class SmaCross(Strategy):
    name = "sma_cross"
    Params = SmaCrossParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, SmaCrossParams)
        super().__init__(params)
        self.fast = params.fast
        self.slow = params.slow
        self._symbols: dict[str, _Averages] = {}

    def on_bar(self, bar: Bar) -> Intent | None:
        # Once per bar of every backtest: locals, and the full window's case first.
        averages = self._symbols.get(bar.symbol)
        if averages is None:
            averages = self._symbols[bar.symbol] = _Averages(deque(maxlen=self.slow))
        close = bar.close
        closes = averages.closes
        fast, slow = self.fast, self.slow
        held = len(closes)
        if held == slow:  # leaves both windows: the append below drops it
            fast_sum = averages.fast_sum - closes[-fast] + close
            slow_sum = averages.slow_sum - closes[0] + close
        else:
            fast_sum = averages.fast_sum + close
            if held >= fast:
                fast_sum -= closes[-fast]  # leaves the fast window now
            slow_sum = averages.slow_sum + close
        closes.append(close)
        averages.fast_sum, averages.slow_sum = fast_sum, slow_sum
        if held + 1 < slow:
            return None
        difference = fast_sum * slow - slow_sum * fast
        side = (difference > 0) - (difference < 0)
        if side == 0 or side == averages.side:
            return None
        previous, averages.side = averages.side, side
        if previous == 0:
            return None  # the first side known: a starting point, not a cross
        direction, trade_side = ("up", Side.BUY) if side > 0 else ("down", Side.SELL)
        return Intent(bar.symbol, trade_side, f"sma {fast}/{slow} crossed {direction}")
