"""Deleting a TradingSystem: the execution engine is halted first and waited for, then the rest
goes; the state volumes stay unless the spec says otherwise; and the finalizer outlives the
operator, so that a deletion while it is away still halts first."""

from __future__ import annotations

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

CLAIMS = ("demo-risk-state", "demo-execution-state")


def _execution_pod() -> dict:
    """What the execution Deployment's ReplicaSet would have started."""
    labels = {
        "app.kubernetes.io/name": "tradingsystem",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "execution",
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "demo-execution-7f9c", "namespace": NAMESPACE, "labels": labels},
        "spec": {"containers": [{"name": "execution", "image": "tradingsystem:0.1.0"}]},
    }


async def test_delete_then_execution_halted_first_and_volumes_kept(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    await eventually(
        lambda: "trading.dev/finalizer" in systems.system(api)["metadata"].get("finalizers", [])
    )
    await api.add(_execution_pod())

    await client.delete(kubeapi.path(*systems.TS, NAMESPACE, "demo"))
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    # The pod has not stopped yet: nothing else is torn down, the system is still there.
    assert systems.deployment(api, "demo", "broker") is not None
    assert systems.system(api)["metadata"]["deletionTimestamp"]

    await client.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/demo-execution-7f9c")
    await eventually(lambda: systems.system(api) is None, what="the system gone")
    for component in ("broker", "risk", "strategy", "marketdata", "execution"):
        assert systems.deployment(api, "demo", component) is None, component
    assert api.object("v1", "configmaps", NAMESPACE, "demo-config") is None
    assert api.object("v1", "services", NAMESPACE, "demo-broker") is None
    assert api.object("networking.k8s.io/v1", "networkpolicies", NAMESPACE, "demo-bus") is None
    for claim in CLAIMS:
        kept = api.object("v1", "persistentvolumeclaims", NAMESPACE, claim)
        assert kept is not None and not kept["metadata"].get("ownerReferences"), claim

    journal = api.journal()
    halted_at = next(
        i
        for i, (kind, resource, name, obj) in enumerate(journal)
        if resource == "Deployment" and name == "demo-execution" and obj["spec"]["replicas"] == 0
    )
    first_deletion = next(
        i
        for i, (kind, resource, name, _) in enumerate(journal)
        if kind == "DELETED" and resource not in {"Pod", "Event"}
    )
    assert halted_at < first_deletion
    deleted = [
        name
        for kind, resource, name, _ in journal
        if kind == "DELETED" and resource == "Deployment"
    ]
    assert deleted[0] == "demo-execution" and deleted[-1] == "demo-broker"


async def test_delete_when_volumes_not_retained_then_deleted_too(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(storage={"retain_on_delete": False}))
    claim = await eventually(
        lambda: api.object("v1", "persistentvolumeclaims", NAMESPACE, CLAIMS[0])
    )
    assert claim["metadata"]["ownerReferences"][0]["name"] == "demo"
    await eventually(lambda: systems.system(api)["metadata"].get("finalizers"))

    await client.delete(kubeapi.path(*systems.TS, NAMESPACE, "demo"))
    await eventually(lambda: systems.system(api) is None, what="the system gone")
    for name in CLAIMS:
        assert api.object("v1", "persistentvolumeclaims", NAMESPACE, name) is None


async def test_operator_stopped_then_finalizer_kept_and_deletion_waits_for_halt_first(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """A shut-down (an upgrade, a rescheduled pod) must not open a window in which deleting a
    system skips the halt-first teardown: the finalizer stays, the next operator does it."""
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    await eventually(lambda: systems.system(api)["metadata"].get("finalizers"), what="finalizer")

    await operator.stop()
    assert "trading.dev/finalizer" in systems.system(api)["metadata"]["finalizers"]
    await client.delete(kubeapi.path(*systems.TS, NAMESPACE, "demo"))
    assert systems.system(api)["metadata"]["deletionTimestamp"]  # Terminating, not gone
    assert systems.replicas(api, "execution") == 1

    await operator.start()
    await eventually(lambda: systems.system(api) is None, what="the system gone")
    journal = api.journal()
    halted_at = next(
        i
        for i, (_, resource, name, obj) in enumerate(journal)
        if resource == "Deployment" and name == "demo-execution" and obj["spec"]["replicas"] == 0
    )
    first_deletion = next(
        i
        for i, (kind, resource, _, _) in enumerate(journal)
        if kind == "DELETED" and resource not in {"Pod", "Event"}
    )
    assert halted_at < first_deletion
