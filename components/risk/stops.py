"""Exits per position: stop-loss and take-profit from the average entry price, and a trailing
stop from the best price since entry. A position is valued at the price it would exit at: the
bid for a long, the ask for a short.

The best price is kept in memory: after a restart a trailing stop trails from the entry price or
the first price seen, whichever is better, and from there on as before.
"""

from __future__ import annotations

from decimal import Decimal

from components.core.config import StopsConfig
from components.core.events import Quote
from components.risk.positions import Holding

HUNDRED = Decimal(100)


class Stops:
    def __init__(self, config: StopsConfig) -> None:
        self.config = config
        self.best: dict[str, Decimal] = {}
        self._sides: dict[str, int] = {}  # the sign of the position `best` belongs to

    @property
    def enabled(self) -> bool:
        c = self.config
        return any(p is not None for p in (c.stop_loss_pct, c.trailing_stop_pct, c.take_profit_pct))

    def exit_reason(self, symbol: str, holding: Holding, quote: Quote) -> str | None:
        """Why the position in `symbol` must be closed at `quote`, or None."""
        quantity = holding.quantity
        if quantity == 0:
            self.best.pop(symbol, None)
            return None
        sign = 1 if quantity > 0 else -1
        price = quote.bid_price if sign > 0 else quote.ask_price
        entry = holding.avg_price
        if self._sides.get(symbol) != sign:  # a new position (or a flip): trail from its entry
            self._sides[symbol] = sign
            self.best[symbol] = entry
        best = self.best[symbol]
        if (price - best) * sign > 0:
            best = self.best[symbol] = price
        config = self.config
        gain_pct = (price - entry) * sign * HUNDRED / entry
        if config.stop_loss_pct is not None and gain_pct <= -config.stop_loss_pct:
            return (
                f"STOP_LOSS: symbol={symbol}, entry={entry}, price={price}, "
                f"loss_pct={round(-gain_pct, 2)}, limit_pct={config.stop_loss_pct}"
            )
        if config.take_profit_pct is not None and gain_pct >= config.take_profit_pct:
            return (
                f"TAKE_PROFIT: symbol={symbol}, entry={entry}, price={price}, "
                f"gain_pct={round(gain_pct, 2)}, limit_pct={config.take_profit_pct}"
            )
        if config.trailing_stop_pct is not None:
            fall_pct = (best - price) * sign * HUNDRED / best
            if fall_pct >= config.trailing_stop_pct:
                return (
                    f"TRAILING_STOP: symbol={symbol}, best={best}, price={price}, "
                    f"fall_pct={round(fall_pct, 2)}, limit_pct={config.trailing_stop_pct}"
                )
        return None
