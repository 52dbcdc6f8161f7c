"""Every permission the operator needs, in one place, with why; the chart renders these rules
(`deploy.py` shows how). The risk manager's own, narrower Role is built per system
(`builders/accounts.py`): it may read and patch the status of its own TradingSystem only.

Two modes, chosen by the namespaces the operator watches (the chart's `operator.watchNamespaces`):

- **cluster-wide** (none listed): `NAMESPACED_RULES` in a ClusterRole, since the systems may be in
  any namespace, with `CLUSTER_RULES` and `CLUSTER_PEERING_RULES`;
- **namespaced**: `NAMESPACED_RULES` and `NAMESPACED_PEERING_RULES` in a Role per watched
  namespace, and a ClusterRole with `CLUSTER_RULES` and `NAMESPACE_LIST_RULES` only: read-only,
  no Deployment, Role, RoleBinding or Secret anywhere else, so that the operator's account cannot
  grant itself or anyone rights outside the namespaces it serves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trading_operator import names

CHILDREN = ["get", "list", "watch", "create", "patch", "delete"]
UNWATCHED_CHILDREN = ["get", "list", "create", "patch", "delete"]
NAMESPACED_RULES: list[dict[str, Any]] = [
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
    # Children carry ownerReferences with blockOwnerDeletion: the OwnerReferencesPermission-
    # Enforcement admission plugin refuses those unless their author may update the owner's
    # finalizers.
    {
        "apiGroups": [names.GROUP],
        "resources": [f"{names.PLURAL}/finalizers"],
        "verbs": ["update"],
    },
    # The children, watched so that a hand edit or deletion is put back.
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": CHILDREN},
    {
        "apiGroups": [""],
        "resources": ["services", "configmaps", "persistentvolumeclaims"],
        "verbs": CHILDREN,
    },
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": CHILDREN},
    # The risk manager's account, Role and RoleBinding (the Role grants only what the operator
    # holds itself): listed by the resync, not watched.
    {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": UNWATCHED_CHILDREN},
    {
        "apiGroups": ["rbac.authorization.k8s.io"],
        "resources": ["roles", "rolebindings"],
        "verbs": UNWATCHED_CHILDREN,
    },
    # The per-system admin token the risk manager's breaker endpoints check: created once, read
    # to pass on, patched to rotate. No list or watch: the operator never browses Secrets.
    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "create", "patch"]},
    {"apiGroups": ["monitoring.coreos.com"], "resources": ["servicemonitors"], "verbs": CHILDREN},
    # A deletion waits until the execution engine's pods are gone (their orders cancelled).
    {"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
    # Events for every condition transition (kopf posts core/v1 Events).
    {"apiGroups": ["", "events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]},
]
# kopf's resource discovery: it watches CRDs to notice resources appearing (both modes).
CLUSTER_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": ["apiextensions.k8s.io"],
        "resources": ["customresourcedefinitions"],
        "verbs": ["get", "list", "watch"],
    },
]
# kopf restricted to namespaces lists and watches them, to notice one created or deleted.
NAMESPACE_LIST_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
]
# Leader election between replicas (kopf peering): each replica watches the peering object and
# patches its own keep-alive into it; cluster-wide operators use the cluster-scoped kind.
PEERING_VERBS = ["list", "watch", "patch"]
CLUSTER_PEERING_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["kopf.dev"], "resources": ["clusterkopfpeerings"], "verbs": PEERING_VERBS},
]
NAMESPACED_PEERING_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["kopf.dev"], "resources": ["kopfpeerings"], "verbs": PEERING_VERBS},
]


def cluster_rules(watch_namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
    """What the operator's ClusterRole grants in either mode."""
    if watch_namespaces:
        return [*CLUSTER_RULES, *NAMESPACE_LIST_RULES]
    return [*NAMESPACED_RULES, *CLUSTER_RULES, *CLUSTER_PEERING_RULES]


def namespace_rules() -> list[dict[str, Any]]:
    """What the operator's Role grants in each watched namespace (namespaced mode)."""
    return [*NAMESPACED_RULES, *NAMESPACED_PEERING_RULES]


def _binding(kind: str, name: str, namespace: str | None, account_namespace: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": names.MANAGER}}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": f"{kind}Binding",
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name},
        "subjects": [
            {"kind": "ServiceAccount", "name": names.MANAGER, "namespace": account_namespace}
        ],
    }


def manifests(account_namespace: str, watch_namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The ClusterRole and its binding, and in namespaced mode a Role and RoleBinding in each
    watched namespace, all for the operator's ServiceAccount in `account_namespace`."""
    labels = {"app.kubernetes.io/name": names.MANAGER}
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": names.MANAGER, "labels": labels},
            "rules": cluster_rules(watch_namespaces),
        },
        _binding("ClusterRole", names.MANAGER, None, account_namespace),
    ]
    for namespace in watch_namespaces:
        objects.append(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": names.MANAGER, "namespace": namespace, "labels": labels},
                "rules": namespace_rules(),
            }
        )
        objects.append(_binding("Role", names.MANAGER, namespace, account_namespace))
    return objects
