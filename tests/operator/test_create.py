"""Creating a TradingSystem: every child exists, passed the official schemas (the server refuses
what they refuse), carries owner references and the recommended labels, and the status says
what was observed."""

from __future__ import annotations

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

CHILDREN = [
    ("v1", "configmaps", "demo-config"),
    ("v1", "serviceaccounts", "demo-risk"),
    ("rbac.authorization.k8s.io/v1", "roles", "demo-risk"),
    ("rbac.authorization.k8s.io/v1", "rolebindings", "demo-risk"),
    ("v1", "persistentvolumeclaims", "demo-risk-state"),
    ("v1", "persistentvolumeclaims", "demo-execution-state"),
    ("v1", "services", "demo-broker"),
    *[
        ("v1", "services", f"demo-{c}-metrics")
        for c in ("broker", "risk", "strategy", "marketdata", "execution")
    ],
    ("networking.k8s.io/v1", "networkpolicies", "demo-bus"),
    *[
        ("apps/v1", "deployments", f"demo-{c}")
        for c in ("broker", "risk", "strategy", "marketdata", "execution")
    ],
]


async def test_create_then_every_child_exists_owned_and_labelled(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await client.create(kubeapi.path(*systems.TS, NAMESPACE), systems.manifest())

    def children() -> list:
        return [api.object(v, p, NAMESPACE, n) for v, p, n in CHILDREN]

    found = await eventually(lambda: all(children()) and children(), what="every child")
    uid = systems.system(api)["metadata"]["uid"]
    for (_, plural, name), child in zip(CHILDREN, found, strict=True):
        labels = child["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "demo", name
        assert labels["app.kubernetes.io/managed-by"] == "trading-operator", name
        owners = child["metadata"].get("ownerReferences") or []
        if plural == "persistentvolumeclaims":
            assert owners == [], f"{name}: retained by default, so not owned"
        else:
            assert [o["uid"] for o in owners] == [uid], name


async def test_create_then_pods_are_restricted_and_probed(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await client.create(kubeapi.path(*systems.TS, NAMESPACE), systems.manifest())
    risk = await eventually(lambda: systems.deployment(api, "demo", "risk"), what="risk")
    pod = risk["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "demo-risk-state"}} in pod[
        "volumes"
    ]
    assert pod["serviceAccountName"] == "demo-risk"
    config = api.object("v1", "configmaps", NAMESPACE, "demo-config")
    assert "AAPL" in config["data"]["tradingsystem.yaml"]
    policy = api.object("networking.k8s.io/v1", "networkpolicies", NAMESPACE, "demo-bus")
    ports = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"])
    assert ports == [5555, 5556, 5557, 5558, 8080]


async def test_create_then_status_reports_generation_phase_and_conditions(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await client.create(kubeapi.path(*systems.TS, NAMESPACE), systems.manifest())
    body = await eventually(
        lambda: (s := systems.system(api)) and s.get("status", {}).get("observedGeneration") and s,
        what="a status",
    )
    status = body["status"]
    assert status["observedGeneration"] == body["metadata"]["generation"]
    assert status["phase"] == "Pending"  # no pod is ready: nothing runs them here
    assert status["ready"] == "0/5" and status["halted"] is False
    assert {c["type"] for c in status["conditions"]} == {
        "Ready",
        "Halted",
        "BreakerOpen",
        "Degraded",
    }
    assert systems.condition(body, "Ready")["reason"] == "ComponentsNotReady"
