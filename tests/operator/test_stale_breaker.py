"""Fail-safe halt: a breaker report older than `spec.breaker_stale_after_s` (a risk manager that
died after reporting "closed", or one that never reported) counts as unknown, and the execution
engine is halted (`Halted=True, reason=BreakerStale`); fresh reports resume it per policy."""

from __future__ import annotations

import time

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

STALE_AFTER_S = 2.0


async def _report(kube: KubeApi, state: str = "closed") -> None:
    """What the risk manager sends every stale_after / 3: its breaker and a heartbeat."""
    breaker = {
        "state": state,
        "reason": "",
        "since_ns": 1,
        "reported_by": "risk",
        "heartbeat_ns": time.time_ns(),
    }
    url = kubeapi.path(*systems.TS, NAMESPACE, "demo", "status")
    await kube.patch(url, {"status": {"breaker": breaker}})


def _halted(api: ApiServer) -> dict:
    return systems.condition(systems.system(api), "Halted")


async def test_breaker_report_goes_stale_then_execution_halted_and_fresh_reports_resume(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    manifest = systems.manifest(breaker_stale_after_s=STALE_AFTER_S, resume_policy="automatic")
    await systems.create(client, manifest)
    await _report(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution running")
    reported = time.monotonic()

    # The risk manager goes silent: within stale_after plus one reconcile, execution stops.
    await eventually(
        lambda: systems.replicas(api, "execution") == 0, timeout_s=10, what="execution halted"
    )
    assert time.monotonic() - reported >= STALE_AFTER_S - 0.5
    halted = await eventually(lambda: _halted(api).get("status") == "True" and _halted(api))
    assert halted["reason"] == "BreakerStale"
    assert "no report from the risk manager" in halted["message"]

    await _report(client)  # it is back
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution resumed")
    await eventually(lambda: _halted(api).get("status") == "False", what="Halted=False")


async def test_risk_manager_never_reports_then_halted_after_stale_after_from_creation(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(breaker_stale_after_s=STALE_AFTER_S))
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution started")
    await eventually(
        lambda: _halted(api).get("reason") == "BreakerStale", timeout_s=10, what="BreakerStale"
    )
    assert systems.replicas(api, "execution") == 0
    # Under the manual policy the halt is latched, as a trip is: a person resumes.
    body = await eventually(lambda: (s := systems.system(api))["spec"].get("halted") and s)
    assert body["spec"]["halted"] is True
