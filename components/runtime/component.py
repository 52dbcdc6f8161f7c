"""The base of every component and the one way to run it.

A component subclasses `Component`, names itself, and implements `run()` (its main loop; it is
cancelled on shutdown) and optionally `readiness()` and `status()`. `serve()` does the rest, the
same way for every component: JSON logs, the HTTP server, the bus, SIGTERM/SIGINT handling and a
shutdown bounded by `shutdown_timeout_s`.

Exit codes: 0 after a requested shutdown, 1 when `run()` failed (the supervisor or the kubelet
restarts the process), 2 for invalid config or a journal that cannot be replayed (restarting will
not help; one error line says why, without a traceback).
"""

from __future__ import annotations

import abc
import asyncio
import gc
import logging
import signal
from typing import Any, ClassVar

import prometheus_client as prom
from aiohttp import web

from components.core.config import TradingSystemSpec
from components.core.errors import CorruptLogError
from components.runtime import journal, server
from components.runtime.bus import Bus
from components.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)


class Component(abc.ABC):
    """One process of the system. Sockets and tasks are created in `run()`, inside the loop."""

    name: ClassVar[str]

    def __init__(
        self, spec: TradingSystemSpec, settings: RuntimeSettings, registry: prom.CollectorRegistry
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.registry = registry
        self._bus: Bus | None = None

    @property
    def bus(self) -> Bus:
        """The component's broker connections, created on first use (inside the event loop)."""
        if self._bus is None:
            self._bus = Bus(
                self.settings.broker,
                self.settings.component_id,
                self.registry,
                heartbeat_interval_s=self.spec.broker.heartbeat_interval_ms / 1000,
                high_water_mark=self.spec.broker.high_water_mark,
            )
        return self._bus

    @abc.abstractmethod
    async def run(self) -> None:
        """The component's work; runs until cancelled."""

    def readiness(self) -> dict[str, bool]:
        """Named checks that must all pass for `/ready`; the bus's own come first."""
        return self._bus.readiness() if self._bus else {"bus": False}

    def status(self) -> dict[str, Any]:
        """What `/status` shows."""
        return {"component": self.name, "ready": all(self.readiness().values())}

    def routes(self) -> list[web.RouteDef]:
        """HTTP routes of the component's own, beside /health, /ready, /metrics and /status."""
        return []

    async def close(self) -> None:  # noqa: B027 (an optional hook)
        """Release what `run()` holds; called once after `run()` ends, before the bus closes."""

    def _close_bus(self) -> None:
        if self._bus is not None:
            self._bus.close()
            self._bus = None


async def serve(component: Component) -> int:
    """Run `component` until SIGTERM/SIGINT or until it fails; return the exit code."""
    settings = component.settings
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    app = server.build_app(
        component.registry,
        component.readiness,
        component.status,
        component.routes(),
        shared=[journal.METRICS],
    )
    runner = await server.start(app, settings.listen_host, settings.http_port)
    log.info(
        "Component %s started; health on %s:%d.",
        component.name,
        settings.listen_host,
        settings.http_port,
    )
    # Everything imported and built so far lives as long as the process: take it out of the
    # collector's sight. Otherwise each full collection walks it all (20-50 ms measured here),
    # which stalls whatever message is in flight: the worst of the tick-to-order tail.
    gc.collect()
    gc.freeze()
    work = asyncio.create_task(component.run(), name=f"{component.name}.run")
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({work, stopping}, return_when=asyncio.FIRST_COMPLETED)

    exit_code = 0
    if work.done():
        failure = work.exception()
        if isinstance(failure, CorruptLogError):
            # Its state on disk cannot be replayed: restarting will not help, repairing may.
            log.error(
                "Component %s refuses to start: %s. %s",
                component.name,
                failure,
                journal.repair_hint(settings.data_dir),
            )
            exit_code = 2
        else:
            log.error("Component %s stopped unexpectedly.", component.name, exc_info=failure)
            exit_code = 1
    else:
        log.info("Component %s is shutting down.", component.name)
        work.cancel()
    try:
        async with asyncio.timeout(settings.shutdown_timeout_s):
            await asyncio.wait({work})  # its outcome is logged above, not raised again here
            await component.close()
    except TimeoutError:
        log.error(
            "Component %s did not stop within %g s; exiting anyway.",
            component.name,
            settings.shutdown_timeout_s,
        )
        exit_code = exit_code or 1
    except Exception:
        log.exception("Component %s failed while shutting down.", component.name)
        exit_code = exit_code or 1
    stopping.cancel()
    component._close_bus()
    await runner.cleanup()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)
    log.info("Component %s stopped.", component.name)
    return exit_code
