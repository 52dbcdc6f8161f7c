"""Breakout momentum (Donchian channel): buy when a bar closes above the highest high of the
`period` bars before it, sell when it closes below their lowest low.

The channel is of the previous bars only (the current bar is compared with it, then added), so a
breakout is a close beyond everything seen in the window. One signal per direction: a run of new
highs signals once, until a close below the channel turns it round.
"""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.events import Bar, Side
from components.strategy import indicators
from components.strategy.base import Intent, Strategy


class BreakoutParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: int = Field(20, ge=1, description="Bars in the channel before the current one.")


class _Channel:
    __slots__ = ("direction", "high", "low")

    def __init__(self, period: int) -> None:
        self.high = indicators.RollingExtreme(period)
        self.low = indicators.RollingExtreme(period, lowest=True)
        self.direction = 0


class Breakout(Strategy):
    name = "breakout"
    Params = BreakoutParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, BreakoutParams)
        super().__init__(params)
        self.period = params.period
        self._channels: dict[str, _Channel] = {}

    def on_bar(self, bar: Bar) -> Intent | None:
        channel = self._channels.get(bar.symbol)
        if channel is None:
            channel = self._channels[bar.symbol] = _Channel(self.period)
        highest, lowest = channel.high.value, channel.low.value
        close = float(bar.close)
        channel.high.update(float(bar.high))
        channel.low.update(float(bar.low))
        if highest is None or lowest is None:
            return None
        direction = 1 if close > highest else -1 if close < lowest else 0
        if direction == 0 or direction == channel.direction:
            return None
        channel.direction = direction
        if direction > 0:
            return Intent(bar.symbol, Side.BUY, f"close {bar.close} above {self.period}-bar high")
        return Intent(bar.symbol, Side.SELL, f"close {bar.close} below {self.period}-bar low")
