"""`tradingsystem run`: the whole system as local processes, supervised the way Kubernetes would.

Every component runs as its own child process, started exactly as its pod starts it
(`tradingsystem component NAME --config FILE`, with its settings in the environment), on free
ports on 127.0.0.1 and with its state under the data directory. A child that dies is restarted
with exponential backoff and its restart count is shown, like a pod's. An observer on the bus feeds
the live view; at the end the summary checks that the risk manager's state on disk equals what it
held at start plus every fill seen on the bus, and that it equals what the venue itself holds:
the execution engine's last log line (`venue_final`) carries the venue's own answer, asked for
after its working orders were cancelled and their final states fetched.

Before any child starts, every component is built from the config as its process would build it
(`catalog.preflight`) and every journal under the data directory is checked: a damaged one
refuses the run with one line naming the file and pointing at `tradingsystem state --repair`,
rather than a child that refuses to start, restarted in a loop, while the others trade.

Stopping goes from the producers to the consumers (market data and strategy, then execution, then
the risk manager, then the broker), so that every fill reaches the risk manager before it stops.

The halt is enforced as the operator enforces it on Kubernetes: when the risk manager's breaker
opens (`RiskState` on `risk.state`), the execution process is stopped (its "zero replicas": on
SIGTERM it cancels its working orders) and is not restarted; when the breaker leaves the open
state (half-open or closed), it is started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import dataclasses
import importlib.resources
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client as prom
import yaml
from rich.console import Console
from rich.logging import RichHandler

from components import catalog, dashboard, state_report
from components.core.config import API_VERSION, KIND, TradingSystemSpec, load_spec, parse_spec
from components.core.errors import CorruptLogError, FillRejected
from components.core.events import (
    BreakerState,
    Fill,
    Order,
    OrderStatus,
    OrderUpdate,
    Quote,
    RiskState,
    Signal,
    Trade,
)
from components.core.wire import Envelope
from components.risk import statelog
from components.runtime import journal
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints

log = logging.getLogger(__name__)

STOP_ORDER = ("marketdata", "strategy", "execution", "risk", "broker")
BACKOFF_INITIAL_S, BACKOFF_MAX_S = 1.0, 30.0
STABLE_AFTER_S = 30.0  # a child up this long starts its backoff again from the beginning
READY_TIMEOUT_S = 30.0
DRAIN_S = 0.5  # time for in-flight fills to reach the risk manager before it stops
HALTED_BY_BREAKER = "execution"  # the component a tripped breaker scales to zero
ZERO = Decimal(0)


def default_document() -> dict[str, Any]:
    text = importlib.resources.files("components").joinpath("defaults/local.yaml").read_text()
    document: dict[str, Any] = yaml.safe_load(text)
    return document


def restart_delay_s(failures: int) -> float:
    """The wait before restarting a child after its `failures`-th exit in a row: 1 s, 2 s,
    4 s, … up to 30 s, as the kubelet backs off a crashing pod."""
    return min(BACKOFF_INITIAL_S * 2 ** (failures - 1), BACKOFF_MAX_S)


def free_ports(count: int) -> list[int]:
    """`count` distinct free ports of 127.0.0.1 (all probes held open together, so that the
    system cannot hand out one port twice)."""
    with contextlib.ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the supervisor dies, so no child is orphaned."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclasses.dataclass
class Child:
    """One component process and what the supervisor knows of it."""

    name: str
    http_port: int
    env: dict[str, str]
    log_path: Path
    process: asyncio.subprocess.Process | None = None
    started_at: float = 0.0
    restarts: int = 0
    last_exit: int | None = None
    ready: bool = False
    state: str = "pending"


@dataclasses.dataclass
class Activity:
    """What the observer saw on the bus during this run."""

    quotes: dict[str, Quote] = dataclasses.field(default_factory=dict)
    last_trade: dict[str, Trade] = dataclasses.field(default_factory=dict)
    signals: int = 0
    orders: int = 0
    fills: list[Fill] = dataclasses.field(default_factory=list)
    rejected_orders: int = 0
    recent: list[str] = dataclasses.field(default_factory=list)

    def note(self, line: str) -> None:
        self.recent.append(f"{time.strftime('%H:%M:%S')} {line}")
        del self.recent[:-10]


class Supervisor:
    def __init__(self, name: str, spec: TradingSystemSpec, config: Path, data_dir: Path) -> None:
        self.name = name
        self.spec = spec
        self.config = config
        self.data_dir = data_dir
        publish, subscribe, request, reply, *http_ports = free_ports(4 + len(catalog.COMPONENTS))
        self.endpoints = BrokerEndpoints(
            host="127.0.0.1",
            publish_port=publish,
            subscribe_port=subscribe,
            request_port=request,
            reply_port=reply,
        )
        (data_dir / "logs").mkdir(parents=True, exist_ok=True)
        self.children = {
            name: self._child(name, port)
            for name, port in zip(catalog.COMPONENTS, http_ports, strict=True)
        }
        self.activity = Activity()
        # The state at start plus every fill seen: what the risk manager's log must hold at the end.
        on_disk = statelog.load(data_dir / "risk", spec.risk.initial_cash).state
        self.observed = on_disk.book
        self.listeners: list[Callable[[Envelope], None]] = []  # extra observers (benchmarks)
        self.fill_ids: set[str] = set()
        self.observed_topics = [""]  # everything: the live view shows prices too
        self.stopping = False
        self.started_at = time.monotonic()
        # A breaker left open by an earlier run keeps execution from starting at all.
        self.breaker = on_disk.breaker.state
        self.halted = self.breaker is BreakerState.OPEN  # execution stopped: breaker open
        self._may_run = asyncio.Event()  # set while execution may run (made in the loop)
        self._halt_task: asyncio.Task[None] | None = None

    def _child(self, component: str, port: int) -> Child:
        ports = self.endpoints
        env = {
            **os.environ,
            "TS_SYSTEM_NAME": self.name,
            "TS_COMPONENT_ID": component,
            "TS_LISTEN_HOST": "127.0.0.1",
            "TS_HTTP_PORT": str(port),
            "TS_BROKER_HOST": ports.host,
            "TS_BROKER_PUBLISH_PORT": str(ports.publish_port),
            "TS_BROKER_SUBSCRIBE_PORT": str(ports.subscribe_port),
            "TS_BROKER_REQUEST_PORT": str(ports.request_port),
            "TS_BROKER_REPLY_PORT": str(ports.reply_port),
            "TS_DATA_DIR": str(self.data_dir / component),
            "PYTHONUNBUFFERED": "1",
        }
        return Child(component, port, env, self.data_dir / "logs" / f"{component}.log")

    # --- child processes ------------------------------------------------------------------

    async def _start(self, child: Child) -> None:
        with child.log_path.open("ab") as log_file:
            child.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "components",
                "component",
                child.name,
                "--config",
                str(self.config),
                env=child.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                process_group=0,  # Ctrl-C reaches the supervisor only; it stops children in order
                preexec_fn=_die_with_parent,
            )
        child.started_at = time.monotonic()
        child.state = "starting"

    async def _keep_running(self, child: Child) -> None:
        """Start the child and restart it whenever it exits, with backoff, until stopping; the
        execution engine only while the breaker is not open."""
        streak = 0
        while not self.stopping:
            if child.name == HALTED_BY_BREAKER:
                await self._may_run.wait()
            await self._start(child)
            assert child.process is not None
            child.last_exit = await child.process.wait()
            child.ready = False
            if self.stopping:
                child.state = "stopped"
                return
            if child.name == HALTED_BY_BREAKER and self.halted:
                child.state = "halted: breaker open"
                streak = 0
                continue
            uptime_s = time.monotonic() - child.started_at
            streak = 1 if uptime_s > STABLE_AFTER_S else streak + 1
            delay_s = restart_delay_s(streak)
            child.restarts += 1
            child.state = f"exited {child.last_exit}; restart in {delay_s:g} s"
            self.activity.note(f"{child.name} exited with {child.last_exit}; restarting")
            log.warning(
                "Component %s exited with %s; restart %d in %g s.",
                child.name,
                child.last_exit,
                child.restarts,
                delay_s,
            )
            await asyncio.sleep(delay_s)

    async def _stop(self, child: Child, timeout_s: float = 15.0) -> None:
        process = child.process
        if process is None or process.returncode is not None:
            return
        child.state = "stopping"
        process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout_s)
        except TimeoutError:
            log.error("Component %s ignored SIGTERM for %g s; killing it.", child.name, timeout_s)
            process.kill()
            await process.wait()
        child.state = "stopped"

    # --- the halt -------------------------------------------------------------------------

    def on_risk_state(self, state: RiskState) -> None:
        """Follow the breaker: halt execution when it opens, resume when it leaves open."""
        previous, self.breaker = self.breaker, state.breaker
        if state.breaker is previous:
            return
        if state.breaker is BreakerState.OPEN and not self.halted:
            self.halted = True
            self._may_run.clear()
            reason = state.breaker_reason or "no reason given"
            self.activity.note(f"breaker open ({reason}); execution halted")
            log.warning("Circuit breaker open (%s): stopping execution.", reason)
            child = self.children[HALTED_BY_BREAKER]
            self._halt_task = asyncio.create_task(self._stop(child))
        elif state.breaker is not BreakerState.OPEN and self.halted:
            self.halted = False
            self._may_run.set()
            self.activity.note(f"breaker {state.breaker}; execution resumed")
            log.warning("Circuit breaker %s: starting execution again.", state.breaker)

    async def _poll_readiness(self, session: aiohttp.ClientSession) -> None:
        while True:
            for child in self.children.values():
                running = child.process is not None and child.process.returncode is None
                child.ready = running and await self._is_ready(session, child)
                if running and child.state in {"starting", "running", "not ready"}:
                    child.state = "running" if child.ready else "not ready"
            await asyncio.sleep(0.5)

    @staticmethod
    async def _is_ready(session: aiohttp.ClientSession, child: Child) -> bool:
        url = f"http://127.0.0.1:{child.http_port}/ready"
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=1)) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            return False

    async def _wait_ready(self, names: list[str], stop: asyncio.Event) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(self.children[n].ready for n in names) and not stop.is_set():
            if time.monotonic() > deadline:
                waiting = [n for n in names if not self.children[n].ready]
                log.warning("Still not ready after %g s: %s.", READY_TIMEOUT_S, ", ".join(waiting))
                return
            await asyncio.sleep(0.1)

    # --- the observer ---------------------------------------------------------------------

    async def _observe(self, bus: Bus) -> None:
        activity = self.activity
        async for envelope in bus.subscriber(self.observed_topics):
            for listener in self.listeners:
                listener(envelope)
            payload = envelope.payload
            if isinstance(payload, Quote):
                activity.quotes[payload.symbol] = payload
                self.observed.mark(payload.symbol, payload.mid)
            elif isinstance(payload, RiskState):
                self.on_risk_state(payload)
            elif isinstance(payload, Trade):
                activity.last_trade[payload.symbol] = payload
            elif isinstance(payload, Signal):
                activity.signals += 1
                activity.note(f"signal {payload.side} {payload.quantity} {payload.symbol}")
            elif isinstance(payload, Order):
                activity.orders += 1
            elif isinstance(payload, OrderUpdate) and payload.status is OrderStatus.REJECTED:
                activity.rejected_orders += 1
                activity.note(f"order {payload.client_order_id} rejected: {payload.reason}")
            elif isinstance(payload, Fill):
                if payload.fill_id in self.fill_ids:
                    continue  # execution re-sends a fill until the risk manager confirms it
                self.fill_ids.add(payload.fill_id)
                try:
                    self.observed.apply_fill(payload)
                except FillRejected as exc:  # the risk manager refuses it too, and logs why
                    activity.note(f"fill {payload.fill_id} refused: {exc.reason}")
                    continue
                activity.fills.append(payload)
                activity.note(
                    f"fill {payload.side} {payload.quantity} {payload.symbol} @ {payload.price}"
                )

    # --- the whole run --------------------------------------------------------------------

    async def run(self, duration_s: float | None, view: dashboard.View | None = None) -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        if not self.halted:
            self._may_run.set()
        else:
            self.children[HALTED_BY_BREAKER].state = "halted: breaker open"
            log.warning("The breaker of %s is open: execution stays stopped.", self.name)
        bus = Bus(self.endpoints, "local-observer", prom.CollectorRegistry())
        tasks: list[asyncio.Task[None]] = []
        async with aiohttp.ClientSession() as session:
            tasks.append(asyncio.create_task(self._poll_readiness(session)))
            keepers = {
                n: asyncio.create_task(self._keep_running(c)) for n, c in self.children.items()
            }
            await self._wait_ready(["broker"], stop)
            tasks.append(asyncio.create_task(self._observe(bus)))
            running = [n for n in self.children if not (self.halted and n == HALTED_BY_BREAKER)]
            await self._wait_ready(running, stop)
            if view is not None:
                tasks.append(asyncio.create_task(view.refresh_until(stop)))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
            stop.set()

            self.stopping = True
            for name in STOP_ORDER:
                if name == "risk":
                    await asyncio.sleep(DRAIN_S)
                await self._stop(self.children[name])
                keepers[name].cancel()
            if self._halt_task is not None:
                await self._halt_task
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, *keepers.values(), return_exceptions=True)
        bus.close()
        return 0


def check_journals(data_dir: Path) -> None:
    """Refuse the run if any component's journal under `data_dir` is damaged: that component
    would refuse to start (a crash loop here), and the rest would trade without it."""
    problems = state_report.damage(data_dir)
    if problems:
        found = "; ".join(str(problem) for problem in problems)
        raise CorruptLogError(f"{found}. {journal.repair_hint(data_dir)}")


def venue_final(log_path: Path, since: str) -> dict[str, Any] | None:
    """The `venue_final` field of the execution engine's log line at its last stop, provided it
    came after its last start and no earlier than `since` (the log's own time format); None if
    that stop said nothing (killed) or there is no such log."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    final: dict[str, Any] | None = None
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # not a JSON log line (a traceback printed by the interpreter)
        if not isinstance(record, dict) or str(record.get("ts", "")) < since:
            continue
        if str(record.get("msg", "")).startswith(f"Component {HALTED_BY_BREAKER} started"):
            final = None  # a stop before this start says nothing of what followed
        elif isinstance(record.get("venue_final"), dict):
            final = record["venue_final"]
    return final


def check_venue(supervisor: Supervisor, console: Console) -> bool:
    """Compare the risk manager's positions on disk with the venue's own answer at the end;
    print the outcome; whether they agree (no answer, or orders of unknown outcome, disagree)."""
    child = supervisor.children[HALTED_BY_BREAKER]
    if child.process is None:
        console.print("Execution did not run: there is no venue to compare with.")
        return True
    started = time.time() - (time.monotonic() - supervisor.started_at)
    since = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
    final = venue_final(child.log_path, since)
    if final is None or not final.get("positions_known"):
        console.print(
            "[red]The venue's positions at the end are unknown: the execution engine did not "
            f"report them at its last stop (see {child.log_path}).[/]"
        )
        return False
    venue = str(final.get("venue", "the venue"))
    try:
        theirs = {str(s): Decimal(str(q)) for s, q in dict(final["positions"]).items()}
    except (ArithmeticError, TypeError, ValueError) as exc:
        console.print(f"[red]The venue's positions at the end cannot be read: {exc!r}.[/]")
        return False
    book = statelog.load_book(supervisor.data_dir / "risk", supervisor.spec.risk.initial_cash)
    ours = {p.symbol: p.quantity for p in book.snapshot()}
    differ = [
        f"{symbol} ({venue} {theirs.get(symbol, ZERO)}, risk on disk {ours.get(symbol, ZERO)})"
        for symbol in sorted(ours.keys() | theirs.keys())
        if theirs.get(symbol, ZERO) != ours.get(symbol, ZERO)
    ]
    unknown = [str(cid) for cid in final.get("unknown_outcome_orders") or []]
    if unknown:
        console.print(
            f"[red]Orders of unknown outcome at {venue} when execution stopped: "
            f"{', '.join(unknown)}.[/]"
        )
    if differ:
        console.print(
            f"[red]The risk manager's state on disk disagrees with {venue}'s own positions: "
            f"{'; '.join(differ)}.[/]"
        )
    if differ or unknown:
        return False
    held = ", ".join(f"{s} {q}" for s, q in sorted(theirs.items()) if q) or "nothing"
    console.print(f"The risk manager's state on disk agrees with {venue}'s own positions ({held}).")
    return True


def main(config: Path | None, data_dir: Path, duration_s: float | None, *, plain: bool) -> int:
    source = "embedded default" if config is None else str(config)
    name, spec = parse_spec(default_document(), source) if config is None else load_spec(config)
    catalog.preflight(spec, name, source)
    data_dir = data_dir.resolve()
    check_journals(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    effective = data_dir / "tradingsystem.yaml"
    effective.write_text(
        yaml.safe_dump(
            {
                "apiVersion": API_VERSION,
                "kind": KIND,
                "metadata": {"name": name},
                "spec": spec.model_dump(mode="json"),
            },
            sort_keys=False,
        )
    )
    supervisor = Supervisor(name, spec, effective, data_dir)
    view = dashboard.View(supervisor, live=sys.stdout.isatty() and not plain)
    # Through the view's console, so that a warning prints above the live view, not into it.
    handler = RichHandler(console=view.console, show_path=False, markup=False)
    logging.basicConfig(level=logging.WARNING, format="%(message)s", handlers=[handler])
    code = asyncio.run(supervisor.run(duration_s, view))
    agreed = dashboard.print_summary(supervisor)
    agreed = check_venue(supervisor, Console()) and agreed
    return code if agreed else 1
