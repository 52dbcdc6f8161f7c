"""The risk manager's own identity: a ServiceAccount whose Role lets it read and patch the
status of its own TradingSystem, nothing else (that is how it reports its breaker)."""

from __future__ import annotations

from typing import Any

from components.core.config import API_VERSION
from trading_operator import names
from trading_operator.builders.system import System

GROUP = API_VERSION.partition("/")[0]


def risk_account(system: System) -> list[dict[str, Any]]:
    name = names.risk_account(system.name)
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": system.metadata(name, "risk"),
            "automountServiceAccountToken": False,  # only the risk pod mounts it
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": system.metadata(name, "risk"),
            "rules": [
                {
                    "apiGroups": [GROUP],
                    "resources": [f"{names.PLURAL}/status"],
                    "resourceNames": [system.name],
                    "verbs": ["get", "patch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": system.metadata(name, "risk"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": system.namespace}],
        },
    ]
