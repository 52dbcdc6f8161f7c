"""Where each kind of child lives in the REST API: (apiVersion, plural)."""

from __future__ import annotations

from typing import Any

from components.core.config import API_VERSION, KIND
from components.runtime import kubeapi
from trading_operator import names

KINDS: dict[str, tuple[str, str]] = {
    "ConfigMap": ("v1", "configmaps"),
    "Secret": ("v1", "secrets"),
    "ServiceAccount": ("v1", "serviceaccounts"),
    "PersistentVolumeClaim": ("v1", "persistentvolumeclaims"),
    "Service": ("v1", "services"),
    "Pod": ("v1", "pods"),
    "Role": ("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
    "NetworkPolicy": ("networking.k8s.io/v1", "networkpolicies"),
    "Deployment": ("apps/v1", "deployments"),
    "ServiceMonitor": ("monitoring.coreos.com/v1", "servicemonitors"),
    KIND: (API_VERSION, names.PLURAL),
}


def collection(kind: str, namespace: str) -> str:
    api_version, plural = KINDS[kind]
    return kubeapi.path(api_version, plural, namespace)


def url(kind: str, namespace: str, name: str, subresource: str | None = None) -> str:
    api_version, plural = KINDS[kind]
    return kubeapi.path(api_version, plural, namespace, name, subresource)


def of(obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return url(obj["kind"], meta["namespace"], meta["name"])


def system_url(namespace: str, name: str, subresource: str | None = None) -> str:
    return url(KIND, namespace, name, subresource)
