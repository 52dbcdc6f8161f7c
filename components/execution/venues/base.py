"""What every venue offers the execution engine.

A venue takes orders (`submit`), follows quotes if it needs them (`on_quote`), and reports what
happens to each order, `OrderUpdate`s and `Fill`s, on its `reports` queue, in the order it learned
them. `submit` returns once the venue has the order, not once it is filled. A venue never invents
a client order id: every report names the order's.

Required of a venue:

    submit(order)   send the order; its fate arrives on `reports`
    cancel_all()    cancel every working order; the cancel updates arrive on `reports`
    ready()         whether orders can be sent now (feeds the engine's `/ready`)
    close()         release connections and tasks
"""

from __future__ import annotations

import abc
import asyncio
from typing import ClassVar

from components.core.events import Fill, Order, OrderUpdate, Quote

Report = OrderUpdate | Fill


class Venue(abc.ABC):
    name: ClassVar[str]

    def __init__(self) -> None:
        self.reports: asyncio.Queue[Report] = asyncio.Queue()

    @abc.abstractmethod
    async def submit(self, order: Order) -> None:
        """Send `order`; called once per client order id."""

    @abc.abstractmethod
    async def cancel_all(self) -> None:
        """Cancel every working order (on shutdown: a stopped engine leaves nothing working)."""

    def on_quote(self, quote: Quote) -> None:  # noqa: B027 (most real venues ignore our quotes)
        """The latest quote of a symbol, for venues that price orders themselves."""

    def ready(self) -> bool:
        return True

    async def close(self) -> None:  # noqa: B027 (an optional hook)
        """Release what the venue holds."""
