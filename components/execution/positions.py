"""Positions as the execution engine's own fills make them, and how they differ from the venue's.

The engine keeps no position book (the risk manager does); but every fill it ever applied is in
its order log, so the net of those fills per symbol is what the venue must hold, as far as this
engine knows. After reconciliation has applied every fill the venue reports for our orders, a
symbol where the two still differ is a drift: a fill lost, or one nobody here made.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from decimal import Decimal

from components.execution.lifecycle import OrderState

ZERO = Decimal(0)


@dataclasses.dataclass(frozen=True)
class Drift:
    symbol: str
    ours: Decimal
    theirs: Decimal

    @property
    def difference(self) -> Decimal:
        """The venue's position minus ours."""
        return self.theirs - self.ours


def net(states: Iterable[OrderState], venue: str | None) -> dict[str, Decimal]:
    """Signed shares by symbol over every fill of the orders sent to `venue` (None: any)."""
    positions: dict[str, Decimal] = {}
    for state in states:
        if venue is not None and state.venue and state.venue != venue:
            continue  # an order log may outlive a change of venue (older logs name none)
        for fill in state.fills:
            positions[fill.symbol] = (
                positions.get(fill.symbol, ZERO) + fill.side.sign * fill.quantity
            )
    return positions


def drifts(ours: dict[str, Decimal], theirs: dict[str, Decimal]) -> list[Drift]:
    """Every symbol whose position differs, by symbol; a missing symbol is flat."""
    return [
        Drift(symbol, ours.get(symbol, ZERO), theirs.get(symbol, ZERO))
        for symbol in sorted(ours.keys() | theirs.keys())
        if ours.get(symbol, ZERO) != theirs.get(symbol, ZERO)
    ]
