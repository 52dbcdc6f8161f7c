"""The simulated exchange as a venue of the live engine: `matching.MatchingEngine` on the wall
clock, with a timer that brings orders to the book once their configured latency has passed.

It is the venue of `tradingsystem run` and of the tests; a backtest drives `MatchingEngine`
directly on its own clock. Its orders live as long as the process: a restarted engine finds none
of them (`get_order` says None), and reconciles them as no longer at the venue. Its account
outlives the process, as a real venue's does, once it is given a directory (`keep_state_in`):
every fill's report is appended there before it is reported, so that a restarted exchange knows
its positions and answers a lookup of an order that filled (what the engine and the risk manager
hold is checked against that, across restarts of the engine and across runs).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec

from components.core.config import SimulatedVenueConfig
from components.core.events import BookSnapshot, Order, OrderStatus, Quote, Trade
from components.execution.venues.base import Report, Venue
from components.execution.venues.matching import MatchingEngine

ACCOUNT_NAME = "simulated-account.jsonl"  # the report of every fill, one JSON line each
TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
ZERO = Decimal(0)
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Report).decode


class SimulatedExchange(Venue):
    name = "simulated"

    def __init__(
        self, config: SimulatedVenueConfig, clock: Callable[[], int] = time.time_ns
    ) -> None:
        super().__init__()
        # Venue ids must stay unique across restarts: the session is the start, in hex ms.
        self.matching = MatchingEngine(config, clock, f"{clock() // 1_000_000:x}")
        self._timer: asyncio.TimerHandle | None = None
        self._account: Path | None = None
        self._earlier: dict[str, Report] = {}  # orders of earlier processes that filled

    def keep_state_in(self, directory: Path) -> None:
        """Keep the account in `directory`: load what earlier processes filled, append each
        fill from now on."""
        account = directory / ACCOUNT_NAME
        if self._account == account:
            return  # this exchange keeps it already (an engine restarted on a surviving venue)
        self._account = account
        try:
            data = account.read_bytes()
        except FileNotFoundError:
            return
        # Only a last fragment without its newline is torn by a kill mid-write (that fill's
        # report never left either); a complete line that does not decode is damage.
        *lines, _fragment = data.split(b"\n")
        for number, line in enumerate(lines, 1):
            try:
                report = _decode(line)
            except msgspec.DecodeError as exc:
                raise ValueError(
                    f"while loading the simulated exchange's account {self._account}: line "
                    f"{number}: {exc}"
                ) from exc
            symbol = report.symbol
            signed = report.side.sign * report.last_quantity
            self.matching.positions[symbol] = self.matching.positions.get(symbol, ZERO) + signed
            if report.status not in TERMINAL:
                # Its process ended, and the order with it; what it filled stands.
                report = msgspec.structs.replace(
                    report, status=OrderStatus.CANCELED, reason="simulated exchange restarted"
                )
            self._earlier[report.client_order_id] = report

    def _save_fills(self, reports: list[Report]) -> None:
        assert self._account is not None
        # Flushed, not fsynced: a killed process loses nothing the OS has, and the engine
        # hears of a fill only after it is written here, as at a real venue.
        with self._account.open("ab") as account:
            for report in reports:
                if report.last_quantity:
                    account.write(_encode(report) + b"\n")

    @property
    def config(self) -> SimulatedVenueConfig:
        return self.matching.config

    @config.setter
    def config(self, config: SimulatedVenueConfig) -> None:
        self.matching.config = config

    async def submit(self, order: Order) -> Report:
        """The acknowledgement is the venue's first word on the order (`new`, or `pending_new`
        while it is in flight); what follows arrives on `reports`."""
        reports = self.matching.submit(order)
        self._publish(reports)
        self._schedule()
        if reports:
            return reports[0]
        pending = self.matching.get(order.client_order_id)
        assert pending is not None
        return pending

    async def get_order(self, client_order_id: str) -> Report | None:
        return self.matching.get(client_order_id) or self._earlier.get(client_order_id)

    async def cancel(self, client_order_id: str) -> None:
        self._publish(self.matching.cancel(client_order_id))

    async def open_orders(self) -> list[Report]:
        return self.matching.open_orders()

    async def positions(self) -> dict[str, Decimal]:
        return dict(self.matching.positions)

    def on_quote(self, quote: Quote) -> None:
        self._publish(self.matching.on_quote(quote))

    def on_trade(self, trade: Trade) -> None:
        self._publish(self.matching.on_trade(trade))

    def on_book(self, book: BookSnapshot) -> None:
        self._publish(self.matching.on_book(book))

    def _publish(self, reports: list[Report]) -> None:
        if self._account is not None and any(r.last_quantity for r in reports):
            self._save_fills(reports)  # before anyone hears of them
        for report in reports:
            self.reports.put_nowait(report)

    def _schedule(self) -> None:
        """Wake up when the next order in flight reaches the book."""
        due_ns = self.matching.next_arrival_ns()
        if due_ns is None or self._timer is not None:
            return
        delay_s = max(0.0, (due_ns - self.matching.clock()) / 1e9)
        self._timer = asyncio.get_running_loop().call_later(delay_s, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._publish(self.matching.advance())
        self._schedule()

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
