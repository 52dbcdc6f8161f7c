"""The breaker's first path: the risk manager itself reports it into its TradingSystem's status
(components/risk/kube_status.py), and the operator halts on that report."""

from __future__ import annotations

import asyncio
import contextlib
import time
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom
import pytest

from components.broker.service import Broker
from components.core.config import TradingSystemSpec
from components.core.events import BreakerState, RiskState
from components.risk import breaker, kube_status
from components.risk.service import RiskManager
from components.runtime.kubeapi import KubeApi, KubeConfig
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually


def _state() -> RiskState:
    return RiskState(
        breaker=BreakerState.OPEN,
        halted_reason="",
        cash=Decimal(1000),
        equity=Decimal(990),
        realized_pnl=Decimal(-10),
        positions=[],
        ts_event_ns=5,
    )


async def test_reporter_when_nothing_changes_then_heartbeat_refreshed_every_interval(
    api: ApiServer, client: KubeApi, kubeconfig: Path
) -> None:
    """A quiet risk manager must not look like a dead one: the breaker goes again with a fresh
    heartbeat every `heartbeat_s`, though its state is the same."""
    await systems.create(client)
    reporter = kube_status.KubeStatusReporter(
        "demo", NAMESPACE, KubeConfig.from_environment(), prom.CollectorRegistry(), heartbeat_s=0.2
    )
    task = asyncio.create_task(reporter.run())
    try:
        reporter.report(_state(), {"state": "closed", "since_ns": 5})
        first = await eventually(
            lambda: ((systems.system(api).get("status") or {}).get("breaker") or {}).get(
                "heartbeat_ns"
            )
        )
        later = await eventually(
            lambda: (
                (beat := systems.system(api)["status"]["breaker"]["heartbeat_ns"]) > first and beat
            )
        )
        assert later - first >= 150_000_000  # not sooner than the interval
        assert systems.system(api)["status"]["breaker"]["state"] == "closed"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_reporter_when_breaker_changes_then_patches_status_once(
    api: ApiServer, client: KubeApi, kubeconfig: Path
) -> None:
    await systems.create(client)
    reporter = kube_status.KubeStatusReporter(
        "demo", NAMESPACE, KubeConfig.from_environment(), prom.CollectorRegistry()
    )
    task = asyncio.create_task(reporter.run())
    try:
        opened = {
            "state": "open",
            "reason": "DAILY_LOSS",
            "trigger": "daily_loss",
            "since_ns": 5,
            "history": [
                {
                    "state": "open",
                    "reason": "DAILY_LOSS",
                    "trigger": "daily_loss",
                    "ts_ns": 5,
                    "seq": 12,
                }
            ],
        }
        reporter.report(_state(), opened)
        body = await eventually(lambda: (systems.system(api).get("status") or {}).get("breaker"))
        assert (body["state"], body["reported_by"], body["trigger"]) == (
            "open",
            "risk",
            "daily_loss",
        )
        assert body["history"] == [
            {"state": "open", "reason": "DAILY_LOSS", "trigger": "daily_loss", "ts_ns": 5}
        ]
        assert systems.system(api)["status"]["positions"]["equity"] == "990"
        versions = len(api.versions(*systems.TS, NAMESPACE, "demo"))
        reporter.report(_state(), opened)  # nothing new: nothing sent
        await asyncio.sleep(0.2)
        assert len(api.versions(*systems.TS, NAMESPACE, "demo")) == versions
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_reporter_when_not_on_kubernetes_then_none() -> None:
    assert kube_status.from_environment("demo", prom.CollectorRegistry(), environ={}) is None


async def test_risk_manager_trips_then_operator_halts_execution(
    api: ApiServer,
    client: KubeApi,
    operator: Operator,
    broker: Broker,
    endpoints: BrokerEndpoints,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    monkeypatch.setenv(kube_status.NAMESPACE_ENV, NAMESPACE)
    settings = make_settings("risk", endpoints, tmp_path, system_name="demo")
    risk = RiskManager(
        TradingSystemSpec(symbols=["AAPL", "MSFT"]), settings, prom.CollectorRegistry()
    )
    task = asyncio.create_task(risk.run())
    try:
        await eventually(
            lambda: systems.system(api).get("status", {}).get("breaker"), what="report"
        )
        risk.engine.trip(breaker.Trigger.MANUAL, "tripped by the test", time.time_ns())
        await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")
        body = await eventually(
            lambda: (
                (s := systems.system(api))
                and systems.condition(s, "Halted")["status"] == "True"
                and s
            )
        )
        assert body["status"]["breaker"]["reason"] == "tripped by the test"
        assert systems.condition(body, "Halted")["reason"] == "BreakerOpen"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await risk.close()
        risk._close_bus()
