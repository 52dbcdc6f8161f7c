"""Status tells the truth: Ready only when every desired component is ready (so
`kubectl wait --for=condition=Ready` means it), Degraded when one stops being ready, an Event
for every transition; and the halt holds while the risk manager is crash-looping."""

from __future__ import annotations

from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

COMPONENTS = ("broker", "risk", "strategy", "marketdata", "execution")


async def _ready(api: ApiServer, component: str, ready: int) -> None:
    """What the Deployment controller writes once the pods pass their readiness probe."""
    status = {"status": {"replicas": 1, "readyReplicas": ready, "availableReplicas": ready}}
    await api.write("apps/v1", "deployments", NAMESPACE, f"demo-{component}", status, "status")


def _events(api: ApiServer) -> list[tuple[str, str]]:
    return [
        (obj["reason"], obj["type"])
        for kind, resource, _, obj in api.journal()
        if resource == "Event" and kind == "ADDED"
    ]


async def test_every_component_ready_then_ready_and_one_lost_then_degraded(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: all(systems.deployment(api, "demo", c) for c in COMPONENTS))
    for component in COMPONENTS:
        await _ready(api, component, 1)
    body = await eventually(
        lambda: (s := systems.system(api)).get("status", {}).get("phase") == "Running" and s,
        what="Running",
    )
    assert systems.condition(body, "Ready")["status"] == "True"
    assert body["status"]["ready"] == "5/5"
    assert body["status"]["components"]["risk"] == {
        "desiredReplicas": 1,
        "readyReplicas": 1,
        "ready": True,
    }

    await _ready(api, "risk", 0)
    body = await eventually(
        lambda: (s := systems.system(api)).get("status", {}).get("phase") == "Degraded" and s,
        what="Degraded",
    )
    assert systems.condition(body, "Ready")["status"] == "False"
    degraded = systems.condition(body, "Degraded")
    assert (degraded["status"], degraded["message"]) == ("True", "Not ready: risk.")
    await eventually(
        lambda: (
            {("AllComponentsReady", "Normal"), ("ComponentsNotReady", "Warning")}
            <= set(_events(api))
        ),
        what="an Event per transition",
    )


async def test_risk_crash_looping_while_breaker_open_then_halt_holds(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(resume_policy="automatic"))
    await eventually(lambda: all(systems.deployment(api, "demo", c) for c in COMPONENTS))
    for component in COMPONENTS:
        await _ready(api, component, 1)
    await eventually(
        lambda: systems.condition(systems.system(api), "Ready").get("status") == "True"
    )
    await systems.report_breaker(client, "open", "MAX_DRAWDOWN", 10)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")

    await _ready(api, "risk", 0)  # its pod restarts again and again: no report, no /status
    await eventually(
        lambda: (
            systems.condition(systems.system(api), "Degraded").get("message") == "Not ready: risk."
        ),
        what="the crash loop seen",
    )
    resyncs = len(api.versions("apps/v1", "deployments", NAMESPACE, "demo-execution"))
    await _ready(api, "execution", 0)  # its last pod gone, as the halt meant
    await eventually(
        lambda: len(api.versions("apps/v1", "deployments", NAMESPACE, "demo-execution")) > resyncs
    )
    history = api.versions("apps/v1", "deployments", NAMESPACE, "demo-execution")
    replicas = [v["spec"]["replicas"] for v in history if v is not None]
    halted_from = replicas.index(0)
    assert replicas[halted_from:] == [0] * (len(replicas) - halted_from)  # never back up
    assert systems.condition(systems.system(api), "Halted")["status"] == "True"
