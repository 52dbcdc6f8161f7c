"""TradingSystem manifests for the operator tests, and the reads tests make of the server."""

from __future__ import annotations

import copy
from typing import Any

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
