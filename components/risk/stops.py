"""Exits per position: stop-loss and take-profit from the average entry price, and a trailing
stop from the best price since entry. A position is valued at the price it would exit at: the
bid for a long, the ask for a short.

The best price moves in memory on every quote that betters it, and is logged in the state log
(`StopPeakMoved`) once it is a step past the logged one: a tenth of the trailing distance, or
any amount once a second has passed since the last record. A record per better quote would fsync
on every tick of a rising market; this way a position logs a handful per trailing distance and at
most about one a second in a slow climb. It is safe because the logged peak only ever lags: after
a restart the stop trails from it, at worst less than a tenth of its distance (or one second of
climb) below the true peak, so it can fire that much later, never earlier. A position with no
peak logged trails from its entry, as the live stop did before the price first moved past it.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from components.core.config import StopsConfig
from components.core.events import Quote
from components.risk.positions import Holding
from components.risk.records import StopPeakMoved

HUNDRED = Decimal(100)
PEAK_STEP = Decimal("0.1")  # of the trailing distance: a peak this far past the logged is logged
PEAK_INTERVAL_NS = 1_000_000_000  # a smaller move is logged once this long after the last record


class Stops:
    def __init__(self, config: StopsConfig, peaks: Iterable[StopPeakMoved] = ()) -> None:
        """`peaks`: the logged ones (after a restart), which the stops trail from again."""
        self.config = config
        self.best: dict[str, Decimal] = {}
        self._sides: dict[str, int] = {}  # the sign of the position `best` belongs to
        for peak in peaks:
            self.best[peak.symbol] = peak.price
            self._sides[peak.symbol] = 1 if peak.long else -1

    @property
    def enabled(self) -> bool:
        c = self.config
        return any(p is not None for p in (c.stop_loss_pct, c.trailing_stop_pct, c.take_profit_pct))

    def exit_reason(self, symbol: str, holding: Holding, quote: Quote) -> str | None:
        """Why the position in `symbol` must be closed at `quote`, or None."""
        quantity = holding.quantity
        if quantity == 0:
            self.forget(symbol)
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

    def forget(self, symbol: str) -> None:
        """The position in `symbol` is closed: the next one trails from its own entry."""
        self.best.pop(symbol, None)
        self._sides.pop(symbol, None)

    def peak_to_log(
        self, symbol: str, holding: Holding, logged: StopPeakMoved | None, now_ns: int
    ) -> StopPeakMoved | None:
        """The record of the best price of the position in `symbol` if it is due (see the
        module's docstring), else None. `logged`: the peak the state log holds for it."""
        trailing_pct = self.config.trailing_stop_pct
        best, sign = self.best.get(symbol), self._sides.get(symbol)
        if trailing_pct is None or best is None or sign is None:
            return None
        long = sign > 0
        if logged is None or logged.long != long:
            if best == holding.avg_price:
                return None  # what a restart trails from anyway
        else:
            gain = (best - logged.price) * sign
            if gain <= 0:
                return None
            step = logged.price * trailing_pct / HUNDRED * PEAK_STEP
            if gain < step and now_ns - logged.ts_logged_ns < PEAK_INTERVAL_NS:
                return None
        return StopPeakMoved(ts_logged_ns=now_ns, symbol=symbol, long=long, price=best)
