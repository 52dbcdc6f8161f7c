"""A user strategy kept outside the package: buy when RSI falls below `oversold`, sell when it
rises above `overbought`.

It is written against the public strategy interface only (`Strategy`, `Intent`, the indicators),
and runs unchanged live and in a backtest:

    tradingsystem backtest --strategy examples/strategies/rsi_reversion.py:RsiReversion \\
        --data bars.csv --params '{"period": 14}'

or, in a TradingSystem spec:

    strategy:
      class_path: examples/strategies/rsi_reversion.py:RsiReversion
      params: {period: 14, oversold: 30, overbought: 70}
"""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.events import Bar, Side
from components.strategy.base import Intent, Strategy
from components.strategy.indicators import Rsi


class RsiReversionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: int = Field(14, ge=1, description="Bars in Wilder's RSI.")
    oversold: float = Field(30, gt=0, lt=100, description="Buy when RSI falls below this.")
    overbought: float = Field(70, gt=0, lt=100, description="Sell when RSI rises above this.")

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> RsiReversionParams:
        if self.oversold >= self.overbought:
            raise ValueError(f"oversold ({self.oversold}) must be below overbought")
        return self


class RsiReversion(Strategy):
    name = "rsi_reversion"
    Params = RsiReversionParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, RsiReversionParams)
        super().__init__(params)
        self.settings = params
        self.rsi: dict[str, Rsi] = {}
        self.zone: dict[str, int] = {}

    def on_bar(self, bar: Bar) -> Intent | None:
        rsi = self.rsi.setdefault(bar.symbol, Rsi(self.settings.period))
        value = rsi.update(float(bar.close))
        if value is None:
            return None
        zone = (
            -1 if value < self.settings.oversold else 1 if value > self.settings.overbought else 0
        )
        previous, self.zone[bar.symbol] = self.zone.get(bar.symbol, 0), zone
        if zone == 0 or zone == previous:
            return None
        side = Side.BUY if zone < 0 else Side.SELL
        return Intent(bar.symbol, side, f"rsi {value:.1f} ({side})")
