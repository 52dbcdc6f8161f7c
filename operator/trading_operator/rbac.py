"""Every permission the operator needs, in one place, with why; the chart renders these rules
(`deploy.py` shows how). The risk manager's own, narrower Role is built per system
(`builders/accounts.py`): it may read and patch the status of its own TradingSystem only."""

from __future__ import annotations

from typing import Any

from trading_operator import names

CHILDREN = ["get", "list", "watch", "create", "patch", "delete"]
RULES: list[dict[str, Any]] = [
    # The systems themselves: watch them, latch a halt (spec.halted), manage the finalizer.
    {
        "apiGroups": [names.GROUP],
        "resources": [names.PLURAL],
        "verbs": ["get", "list", "watch", "patch"],
    },
    {
        "apiGroups": [names.GROUP],
        "resources": [f"{names.PLURAL}/status"],
        "verbs": ["get", "patch"],
    },
    # The children, watched so that a hand edit or deletion is put back.
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": CHILDREN},
    {
        "apiGroups": [""],
        "resources": ["services", "configmaps", "persistentvolumeclaims", "serviceaccounts"],
        "verbs": CHILDREN,
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": CHILDREN},
    # The risk manager's Role and RoleBinding (granting only what the operator holds itself).
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": CHILDREN,
    },
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors"], "verbs": CHILDREN},
    # A deletion waits until the execution engine's pods are gone (their orders cancelled).
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
    # Events for every condition transition (kopf posts core/v1 Events).
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
    # kopf's own needs: namespaces it serves, and resource discovery.
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
]


def cluster_role(name: str = names.MANAGER) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": names.MANAGER}},
        "rules": RULES,
    }
