"""Slippage: what an order is expected to cost against the mid before it is sent, and what each
fill actually cost.

Expected, in basis points of the arrival mid:

    half the quoted spread  +  impact_coefficient x sigma_bps x sqrt(quantity / volume)

the square-root impact model, with sigma the volatility of one bar's return and volume the
typical volume of one bar, both exponentially weighted over the last bars of the symbol (the
first timeframe seen of it). Without bars yet, impact is unknown and only the spread counts.
Realized, per fill: (fill price - arrival mid) / arrival mid, signed so that paying up is
positive, in basis points. Both are estimates for measurement, so they are floats; money stays
Decimal everywhere else.
"""

from __future__ import annotations

import dataclasses
import math
from decimal import Decimal

from components.core.events import Bar, Quote, Side

BPS = 10_000.0


@dataclasses.dataclass(frozen=True)
class Estimate:
    arrival_mid: Decimal
    spread_bps: float
    impact_bps: float | None  # None until bars have been seen

    @property
    def total_bps(self) -> float:
        return self.spread_bps + (self.impact_bps or 0.0)


@dataclasses.dataclass
class _BarStats:
    timeframe: str
    last_close: float | None = None
    variance: float | None = None  # of one bar's log return
    volume: float | None = None  # per bar


class SlippageModel:
    def __init__(self, impact_coefficient: float = 0.7, window_bars: int = 60) -> None:
        self.impact_coefficient = impact_coefficient
        self.alpha = 2.0 / (window_bars + 1)
        self.quotes: dict[str, Quote] = {}
        self.bars: dict[str, _BarStats] = {}

    def on_quote(self, quote: Quote) -> None:
        self.quotes[quote.symbol] = quote

    def on_bar(self, bar: Bar) -> None:
        stats = self.bars.setdefault(bar.symbol, _BarStats(bar.timeframe))
        if bar.timeframe != stats.timeframe or bar.close <= 0:
            return
        close = float(bar.close)
        if stats.last_close is not None:
            r2 = math.log(close / stats.last_close) ** 2
            stats.variance = (
                r2
                if stats.variance is None
                else stats.variance + self.alpha * (r2 - stats.variance)
            )
        volume = float(bar.volume)
        stats.volume = (
            volume if stats.volume is None else stats.volume + self.alpha * (volume - stats.volume)
        )
        stats.last_close = close

    def estimate(self, symbol: str, quantity: Decimal) -> Estimate | None:
        """The expected cost of trading `quantity` now, or None without a quote."""
        quote = self.quotes.get(symbol)
        if quote is None or quote.bid_price <= 0 or quote.ask_price < quote.bid_price:
            return None
        mid = quote.mid
        spread_bps = float((quote.ask_price - quote.bid_price) / 2 / mid) * BPS
        stats = self.bars.get(symbol)
        impact_bps = None
        if stats is not None and stats.variance is not None and stats.volume:
            sigma_bps = math.sqrt(stats.variance) * BPS
            impact_bps = (
                self.impact_coefficient * sigma_bps * math.sqrt(float(quantity) / stats.volume)
            )
        return Estimate(mid, spread_bps, impact_bps)


def realized_bps(side: Side, price: Decimal, arrival_mid: Decimal) -> float:
    """What a fill at `price` cost against the mid when its order arrived; paying up is > 0."""
    return side.sign * float((price - arrival_mid) / arrival_mid) * BPS
