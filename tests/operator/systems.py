"""TradingSystem manifests for the operator tests, and the reads tests make of the server."""

from __future__ import annotations

import copy
from typing import Any

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE

TS = ("trading.dev/v1alpha1", "tradingsystems")


def manifest(name: str = "demo", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"symbols": ["AAPL", "MSFT"], **copy.deepcopy(spec)},
    }


def system(api: ApiServer, name: str = "demo") -> dict[str, Any] | None:
    return api.object(*TS, NAMESPACE, name)


def deployment(api: ApiServer, system_name: str, component: str) -> dict[str, Any] | None:
    return api.object("apps/v1", "deployments", NAMESPACE, f"{system_name}-{component}")


def condition(body: dict[str, Any] | None, type_: str) -> dict[str, Any]:
    for cond in ((body or {}).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


async def create(kube: KubeApi, body: dict[str, Any] | None = None) -> dict[str, Any]:
    return await kube.create(kubeapi.path(*TS, NAMESPACE), body or manifest())


async def patch(kube: KubeApi, patch_: dict[str, Any], name: str = "demo") -> dict[str, Any]:
    return await kube.patch(kubeapi.path(*TS, NAMESPACE, name), patch_)


async def report_breaker(
    kube: KubeApi, state: str, reason: str, since_ns: int, name: str = "demo"
) -> None:
    """What the risk manager's status reporter sends (components/risk/kube_status.py)."""
    breaker = {"state": state, "reason": reason, "since_ns": since_ns, "reported_by": "risk"}
    await kube.patch(kubeapi.path(*TS, NAMESPACE, name, "status"), {"status": {"breaker": breaker}})


def replicas(api: ApiServer, component: str, name: str = "demo") -> int | None:
    found = deployment(api, name, component)
    return None if found is None else found["spec"]["replicas"]
