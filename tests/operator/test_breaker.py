"""The breaker's fallback path: the operator polls the risk manager's /status (a real component
HTTP server here) and acts on what is newer than the status says; and it counts what it did in
its own Prometheus metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import prometheus_client as prom

from components.runtime import server
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import (
    OPERATOR_METRICS_PORT,
    RISK_STATUS_PORT,
    Operator,
    eventually,
)


@asynccontextmanager
async def risk_status(breaker: dict[str, Any]) -> AsyncIterator[None]:
    """The risk manager's HTTP server, showing `breaker` in /status as the risk manager does."""
    app = server.build_app(
        prom.CollectorRegistry(),
        lambda: {"bus": True},
        lambda: {"component": "risk", "breaker": breaker},
    )
    runner = await server.start(app, "127.0.0.1", RISK_STATUS_PORT)
    try:
        yield
    finally:
        await runner.cleanup()


async def test_breaker_open_polled_then_halted(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    history = [{"state": "open", "reason": "MAX_DRAWDOWN: drawdown=0.12, limit=0.1", "ts_ns": 7}]
    breaker = {"state": "open", "reason": history[0]["reason"], "since_ns": 7, "history": history}

    async with risk_status(breaker):
        await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")
    reported = systems.system(api)["status"]["breaker"]
    assert reported["reported_by"] == "poll" and reported["since_ns"] == 7
    assert reported["history"][0]["reason"].startswith("MAX_DRAWDOWN")


async def test_poll_older_than_the_risk_managers_report_then_ignored(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await systems.report_breaker(client, "open", "MAX_DRAWDOWN", since_ns=2_000)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")

    async with risk_status({"state": "closed", "reason": "", "since_ns": 1_000, "history": []}):
        ok = 'outcome="ok"'
        polls = await eventually(lambda: _metric("trading_operator_breaker_polls_total", ok))

        async def polled_again() -> bool:
            return await _metric("trading_operator_breaker_polls_total", ok) > polls

        await eventually(polled_again, what="a poll after the first")
    breaker = systems.system(api)["status"]["breaker"]
    assert (breaker["state"], breaker["reported_by"]) == ("open", "risk")
    assert systems.replicas(api, "execution") == 0


async def test_operator_metrics_count_reconciles_and_halts(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await eventually(_metrics_served, what="the operator's /metrics")
    halts = await _metric("trading_operator_halts_total", 'reason="ManualHalt"')
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    await systems.patch(client, {"spec": {"halted": True}})
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")
    assert await _metric("trading_operator_halts_total", 'reason="ManualHalt"') == halts + 1
    assert await _metric("trading_operator_reconciles_total", 'outcome="changed"') >= 1


async def _metrics_served() -> bool:
    try:
        await _metric("trading_operator_reconciles_total", 'outcome="changed"')
    except aiohttp.ClientConnectionError:
        return False
    return True


async def _metric(name: str, labels: str) -> float:
    url = f"http://127.0.0.1:{OPERATOR_METRICS_PORT}/metrics"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        text = await response.text()
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}}"):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
