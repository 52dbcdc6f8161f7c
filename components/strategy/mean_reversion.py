"""Mean reversion on Bollinger bands: buy when the close falls below the lower band, sell when it
rises above the upper one.

The bands are `width` population standard deviations around the `period` SMA of closes, so a
close is below the lower band exactly when its z-score in the window is below `-width`: this is
the Bollinger and the z-score reversion at once (`indicators.ZScore`). A signal is given when the
close crosses into a band from inside, once per excursion: a close that stays outside gives no
further signal, and nothing is given until the window is full.
"""

from __future__ import annotations

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.events import Bar, Side
from components.strategy import indicators
from components.strategy.base import Intent, Strategy


class MeanReversionParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    period: int = Field(20, ge=2, description="Bars in the window of the mean and deviation.")
    width: float = Field(
        2.0, gt=0, allow_inf_nan=False, description="Band half-width, in standard deviations."
    )


class MeanReversion(Strategy):
    name = "mean_reversion"
    Params = MeanReversionParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, MeanReversionParams)
        super().__init__(params)
        self.period = params.period
        self.width = params.width
        self._scores: dict[str, indicators.ZScore] = {}
        self._zone: dict[str, int] = {}  # -1 below the lower band, +1 above the upper, 0 inside

    def on_bar(self, bar: Bar) -> Intent | None:
        symbol = bar.symbol
        score = self._scores.get(symbol)
        if score is None:
            score = self._scores[symbol] = indicators.ZScore(self.period)
        z = score.update(float(bar.close))
        if z is None:
            return None
        zone = -1 if z < -self.width else 1 if z > self.width else 0
        previous = self._zone.get(symbol, 0)
        self._zone[symbol] = zone
        if zone == previous or zone == 0:
            return None
        if zone < 0:
            return Intent(symbol, Side.BUY, f"z {z:.2f} below -{self.width:g}")
        return Intent(symbol, Side.SELL, f"z {z:.2f} above {self.width:g}")
