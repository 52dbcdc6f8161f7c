"""`serve()`, the one way every component runs: health and readiness over HTTP, SIGTERM, a failing
`run()`, and a shutdown that does not finish in time."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client as prom
import pytest

from components.core.config import TradingSystemSpec
from components.core.errors import CorruptLineError
from components.runtime import journal
from components.runtime.component import Component, serve
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings


class Idle(Component):
    """Runs until cancelled; ready when told; counts its close()."""

    name = "idle"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.is_ready = False
        self.closed = 0
        prom.Counter("idle_naps", "Naps taken.", registry=self.registry).inc(3)

    async def run(self) -> None:
        await asyncio.Event().wait()

    def readiness(self) -> dict[str, bool]:
        return {"dependency": self.is_ready}

    async def close(self) -> None:
        self.closed += 1


class Failing(Idle):
    async def run(self) -> None:
        raise RuntimeError("the venue went away")


class Damaged(Idle):
    async def run(self) -> None:
        raise CorruptLineError(self.settings.data_dir / "a.log", 7, 1234, "CRC mismatch")


class Note(journal.Record, tag="note"):
    pass


class NoteLog(journal.Journal[Note]):
    record_type = Note


class Journaling(Idle):
    """Opens its journal, torn by an earlier crash, as the risk manager and execution do."""

    async def run(self) -> None:
        path = self.settings.data_dir / "notes.log"
        path.parent.mkdir(parents=True)
        path.write_bytes(journal.encode(Note(ts_logged_ns=1)) + b"0bad")
        log, _ = NoteLog.open(path)
        log.close()
        await asyncio.Event().wait()


class Stubborn(Idle):
    async def run(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            await asyncio.sleep(3)  # slower to stop than the 0.5 s allowed: serve() gives up


def _make(cls: type[Idle], endpoints: BrokerEndpoints, tmp_path: Path) -> Idle:
    settings = make_settings("idle", endpoints, tmp_path, shutdown_timeout_s=0.5)
    return cls(TradingSystemSpec(symbols=["AAPL"]), settings, prom.CollectorRegistry())


async def _get(component: Idle, path: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{component.settings.http_port}{path}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text()


def _created_line(component: Idle) -> str:
    created = component.registry.get_sample_value("idle_naps_created")
    return f"idle_naps_created {created!r}\n"


async def _until_serving(component: Idle) -> None:
    async with asyncio.timeout(5):
        while True:
            try:
                await _get(component, "/health")
                return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.02)


async def test_serve_when_sigterm_then_closes_and_exits_0(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    component = _make(Idle, endpoints, tmp_path)
    serving = asyncio.create_task(serve(component))
    await _until_serving(component)

    assert await _get(component, "/health") == (200, '{"status": "ok"}')
    status, body = await _get(component, "/ready")
    assert (status, '"dependency": false' in body) == (503, True)
    component.is_ready = True
    assert (await _get(component, "/ready"))[0] == 200
    status, metrics = await _get(component, "/metrics")
    assert (status == 200 and "# TYPE" in metrics) or metrics == ""

    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == 0
    assert component.closed == 1


async def test_serve_when_run_fails_then_still_closes_and_exits_1(
    endpoints: BrokerEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    component = _make(Failing, endpoints, tmp_path)
    assert await asyncio.wait_for(serve(component), 5) == 1
    assert component.closed == 1
    assert "Component idle stopped unexpectedly." in caplog.messages


async def test_metrics_when_a_torn_journal_was_cut_then_counted_beside_its_own(
    endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    component = _make(Journaling, endpoints, tmp_path)
    serving = asyncio.create_task(serve(component))
    await _until_serving(component)
    sample = 'journal_torn_lines_cut_total{journal="notes.log"} 1.0'
    async with asyncio.timeout(5):
        while sample not in (metrics := (await _get(component, "/metrics"))[1]):
            await asyncio.sleep(0.02)
    assert "idle_naps_total 3.0" in metrics
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == 0


async def test_serve_when_state_on_disk_is_damaged_then_refuses_to_start_with_exit_2(
    endpoints: BrokerEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Restarting will not help: one error line that says where and what to do, no traceback."""
    component = _make(Damaged, endpoints, tmp_path)
    assert await asyncio.wait_for(serve(component), 5) == 2
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    data_dir = component.settings.data_dir
    assert error.getMessage() == (
        f"Component idle refuses to start: journal {data_dir / 'a.log'}: line 7 is corrupt: "
        f"CRC mismatch (at byte 1234). See `tradingsystem state {data_dir}`; "
        f"`tradingsystem state {data_dir} --repair` moves the damaged lines aside."
    )
    assert error.exc_info is None


async def test_serve_when_shutdown_exceeds_its_timeout_then_exits_1(
    endpoints: BrokerEndpoints, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    component = _make(Stubborn, endpoints, tmp_path)
    serving = asyncio.create_task(serve(component))
    await _until_serving(component)
    os.kill(os.getpid(), signal.SIGTERM)
    assert await asyncio.wait_for(serving, 5) == 1
    assert "Component idle did not stop within 0.5 s; exiting anyway." in caplog.messages
