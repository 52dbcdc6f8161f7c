"""What `tradingsystem run` shows: a live view while it runs (rich), and a summary at the end.

The summary is also the run's verdict: the risk manager's positions on disk must equal its
positions at start plus every fill seen on the bus, else the run exits 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.table import Table

from components.core.events import Position
from components.risk import statelog

if TYPE_CHECKING:
    from components.local import Supervisor

REFRESH_S = 0.5
PROGRESS_EVERY_S = 5.0


class View:
    """Redraws the live view (on a terminal) or prints a progress line now and then."""

    def __init__(self, supervisor: Supervisor, *, live: bool) -> None:
        self.supervisor = supervisor
        self.live = live
        self.console = Console()

    async def refresh_until(self, stop: asyncio.Event) -> None:
        if not self.live:
            while not stop.is_set():
                self.console.print(progress_line(self.supervisor), highlight=False)
                await _wait(stop, PROGRESS_EVERY_S)
            return
        with Live(render(self.supervisor), console=self.console, auto_refresh=False) as live:
            while not stop.is_set():
                live.update(render(self.supervisor), refresh=True)
                await _wait(stop, REFRESH_S)


async def _wait(event: asyncio.Event, timeout_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout_s)


def progress_line(supervisor: Supervisor) -> str:
    activity = supervisor.activity
    ready = sum(child.ready for child in supervisor.children.values())
    restarts = sum(child.restarts for child in supervisor.children.values())
    elapsed_s = time.monotonic() - supervisor.started_at
    return (
        f"[{elapsed_s:5.1f} s] ready {ready}/{len(supervisor.children)}, restarts {restarts}, "
        f"signals {activity.signals}, orders {activity.orders}, fills {len(activity.fills)}, "
        f"equity {supervisor.observed.equity():.2f}, breaker {supervisor.breaker}"
        + (" (execution halted)" if supervisor.halted else "")
    )


def render(supervisor: Supervisor) -> Group:
    return Group(
        Panel(progress_line(supervisor), title=f"TradingSystem {supervisor.name}"),
        _components_table(supervisor),
        _market_table(supervisor),
        Panel("\n".join(supervisor.activity.recent) or "waiting for signals…", title="Activity"),
    )


def _components_table(supervisor: Supervisor) -> Table:
    table = Table(title="Components", expand=True)
    for column in ("component", "pid", "state", "ready", "restarts", "last exit", "log"):
        table.add_column(column)
    for child in supervisor.children.values():
        table.add_row(
            child.name,
            str(child.process.pid) if child.process else "-",
            child.state,
            "[green]yes[/]" if child.ready else "[red]no[/]",
            f"[yellow]{child.restarts}[/]" if child.restarts else "0",
            "-" if child.last_exit is None else str(child.last_exit),
            str(child.log_path.relative_to(supervisor.data_dir.parent)),
        )
    return table


def _market_table(supervisor: Supervisor) -> Table:
    activity = supervisor.activity
    positions = {p.symbol: p for p in supervisor.observed.snapshot()}
    table = Table(title="Market and positions", expand=True)
    for column in (
        "symbol",
        "bid",
        "ask",
        "last",
        "position",
        "avg price",
        "realized",
        "unrealized",
    ):
        table.add_column(column, justify="right")
    for symbol in supervisor.spec.symbols:
        quote = activity.quotes.get(symbol)
        trade = activity.last_trade.get(symbol)
        position = positions.get(symbol)
        table.add_row(
            symbol,
            str(quote.bid_price) if quote else "-",
            str(quote.ask_price) if quote else "-",
            str(trade.price) if trade else "-",
            str(position.quantity) if position else "0",
            f"{position.avg_price:.4f}" if position and position.quantity else "-",
            f"{position.realized_pnl:.2f}" if position else "0.00",
            f"{supervisor.observed.unrealized_pnl(symbol):.2f}",
        )
    return table


def print_summary(supervisor: Supervisor) -> bool:
    """Print the final summary; return whether the state on disk agrees with the fills seen."""
    console = Console()
    activity = supervisor.activity
    on_disk = statelog.load_book(supervisor.data_dir / "risk", supervisor.spec.risk.initial_cash)
    on_disk.marks.update(supervisor.observed.marks)
    expected = {p.symbol: p for p in supervisor.observed.snapshot()}
    found = {p.symbol: p for p in on_disk.snapshot()}

    table = Table(title="Positions: from the fills seen vs the risk manager's state on disk")
    for column in ("symbol", "fills", "position (fills)", "position (disk)", "realized (disk)"):
        table.add_column(column, justify="right")
    mismatches: list[str] = []
    for symbol in sorted(set(supervisor.spec.symbols) | expected.keys() | found.keys()):
        want, got = expected.get(symbol), found.get(symbol)
        agrees = _same(want, got)
        if not agrees:
            mismatches.append(symbol)
        got_qty = str(got.quantity if got else 0)
        table.add_row(
            symbol,
            str(sum(1 for f in activity.fills if f.symbol == symbol)),
            str(want.quantity if want else 0),
            got_qty if agrees else f"[red]{got_qty}[/]",
            f"{got.realized_pnl:.2f}" if got else "0.00",
        )
    if on_disk.cash != supervisor.observed.cash:
        mismatches.append("cash")

    unanswered = activity.signals - activity.orders
    components = ", ".join(
        f"{c.name} ({c.restarts} restart{'s' * (c.restarts != 1)})"
        for c in supervisor.children.values()
    )
    console.print(table)
    console.print(
        f"Signals {activity.signals}: {activity.orders} approved, {unanswered} rejected or "
        f"unanswered; orders rejected by the venue {activity.rejected_orders}; "
        f"fills {len(activity.fills)}.\n"
        f"On disk: cash {on_disk.cash:.2f}, realized P&L {on_disk.realized_pnl:.2f} "
        f"(fees {on_disk.fees:.2f}), equity {on_disk.equity():.2f} at the last mid prices.\n"
        f"Components: {components}.",
        highlight=False,
    )
    if mismatches:
        console.print(
            f"[red]The state on disk disagrees with the fills seen: {', '.join(mismatches)}.[/]"
        )
        return False
    console.print(
        f"The risk manager's state on disk agrees with the {len(activity.fills)} fills seen "
        f"on the bus ({supervisor.data_dir / 'risk'})."
    )
    return True


def _same(want: Position | None, got: Position | None) -> bool:
    if want is None or got is None:
        other = want or got
        return other is None or (other.quantity == 0 and other.realized_pnl == 0)
    return (want.quantity, want.avg_price, want.realized_pnl) == (
        got.quantity,
        got.avg_price,
        got.realized_pnl,
    )
