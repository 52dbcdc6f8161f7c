"""How the operator itself runs, as manifests the chart (issue 8) renders the same way: its
ServiceAccount and RBAC (`rbac.py`: cluster-wide, or a Role per watched namespace), the kopf
peering object its replicas elect a leader through, a NetworkPolicy that lets it reach only the
API server, DNS and the risk managers' status port, and a Deployment of `replicas` pods (kopf
peering: one serves, the others stand by; `launch.py` gives each its own priority), rolled one
pod at a time. kopf's liveness endpoint is the liveness probe, its Prometheus metrics have their
own port, the pod runs with the restricted security context of every pod.

`python -m trading_operator.deploy NAMESPACE IMAGE [WATCHED ...]` prints them; `--crds` prints
the peering CRDs, to apply first (a CRD and an object of its kind cannot share one apply).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import yaml

from trading_operator import names, rbac
from trading_operator.settings import DEFAULT_IMAGE

LIVENESS_PORT = 8081
METRICS_PORT = 9090
REPLICAS = 2
PEERING = names.MANAGER
LAUNCHER = ("python", "-m", "trading_operator.launch")  # kopf with a priority of its own
API_SERVER_PORTS = (443, 6443)  # the `kubernetes` Service's port, and the API server's own
DNS = {"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}
RISK_PODS = {"app.kubernetes.io/name": "tradingsystem", "app.kubernetes.io/component": "risk"}


def manifests(
    namespace: str,
    image: str,
    watch_namespaces: Sequence[str] = (),
    replicas: int = REPLICAS,
) -> list[dict[str, Any]]:
    """Every object the operator needs besides the CRDs, the Deployment last."""
    labels = {"app.kubernetes.io/name": names.MANAGER, "app.kubernetes.io/part-of": "tradingsystem"}
    meta = {"name": names.MANAGER, "namespace": namespace, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        *rbac.manifests(namespace, watch_namespaces),
        *peerings(watch_namespaces),
        network_policy(namespace, watch_namespaces),
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": replicas,
                # One new pod at a time; the old keeps serving until the new one's keep-alive
                # makes it pause (or its own pod is gone).
                "strategy": {
                    "type": "RollingUpdate",
                    "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
                },
                "selector": {"matchLabels": {"app.kubernetes.io/name": names.MANAGER}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": _pod(image, watch_namespaces),
                },
            },
        },
    ]


def kopf_args(watch_namespaces: Sequence[str] = ()) -> list[str]:
    """kopf's arguments: the handlers, the peering, the namespaces served."""
    scope = [f"--namespace={ns}" for ns in watch_namespaces] or ["--all-namespaces"]
    return [
        "run",
        "-m",
        "trading_operator.handlers",
        f"--peering={PEERING}",
        *scope,
        f"--liveness=http://0.0.0.0:{LIVENESS_PORT}/healthz",
    ]


def peerings(watch_namespaces: Sequence[str] = ()) -> list[dict[str, Any]]:
    """The peering objects kopf keeps its replicas' keep-alives in (it never creates them)."""
    labels = {"app.kubernetes.io/name": names.MANAGER}
    if not watch_namespaces:
        return [
            {
                "apiVersion": "kopf.dev/v1",
                "kind": "ClusterKopfPeering",
                "metadata": {"name": PEERING, "labels": labels},
            }
        ]
    return [
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "KopfPeering",
            "metadata": {"name": PEERING, "namespace": ns, "labels": labels},
        }
        for ns in watch_namespaces
    ]


def peering_crds() -> list[dict[str, Any]]:
    """kopf's peering CRDs (kopf.dev/v1, as kopf's docs give them): the status is a map of peer
    identities to their priority, lifetime and last keep-alive, written by kopf alone."""
    return [_peering_crd(scope) for scope in ("Cluster", "Namespaced")]


def _peering_crd(scope: str) -> dict[str, Any]:
    kind = "ClusterKopfPeering" if scope == "Cluster" else "KopfPeering"
    plural = kind.lower() + "s"
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "scope": scope,
            "group": "kopf.dev",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower()},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def network_policy(namespace: str, watch_namespaces: Sequence[str] = ()) -> dict[str, Any]:
    """In: metrics and liveness. Out: DNS, the API server (not a pod: any address, its ports
    only), and each risk manager's status port (the breaker poll), in the watched namespaces."""
    if watch_namespaces:
        where: dict[str, Any] = {
            "matchExpressions": [
                {
                    "key": "kubernetes.io/metadata.name",
                    "operator": "In",
                    "values": list(watch_namespaces),
                }
            ]
        }
    else:
        where = {}
    risk = {"namespaceSelector": where, "podSelector": {"matchLabels": RISK_PODS}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": names.MANAGER,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": names.MANAGER},
        },
        "spec": {
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": names.MANAGER}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                {
                    "ports": [
                        {"protocol": "TCP", "port": METRICS_PORT},
                        {"protocol": "TCP", "port": LIVENESS_PORT},
                    ]
                }
            ],
            "egress": [
                {
                    "to": [DNS],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {"ports": [{"protocol": "TCP", "port": port} for port in API_SERVER_PORTS]},
                {"to": [risk], "ports": [{"protocol": "TCP", "port": names.HTTP_PORT}]},
            ],
        },
    }


def _pod(image: str, watch_namespaces: Sequence[str]) -> dict[str, Any]:
    return {
        "serviceAccountName": names.MANAGER,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "operator",
                "image": image,
                "command": [*LAUNCHER, *kopf_args(watch_namespaces)],
                "env": [
                    {"name": "TS_OPERATOR_IMAGE", "value": image},
                    {"name": "TS_OPERATOR_METRICS_PORT", "value": str(METRICS_PORT)},
                    # kopf's peer identity, and the seed of this replica's priority.
                    {"name": "POD_ID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                ],
                "ports": [
                    {"name": "metrics", "containerPort": METRICS_PORT},
                    {"name": "liveness", "containerPort": LIVENESS_PORT},
                ],
                "livenessProbe": {
                    "httpGet": {"path": "/healthz", "port": "liveness"},
                    "periodSeconds": 10,
                    "failureThreshold": 3,
                },
                "resources": {
                    "requests": {"cpu": "50m", "memory": "128Mi"},
                    "limits": {"memory": "256Mi"},
                },
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["--crds"]:
        sys.stdout.write(yaml.safe_dump_all(peering_crds(), sort_keys=False))
        return 0
    namespace = argv[0] if argv else "trading-system"
    image = argv[1] if len(argv) > 1 else DEFAULT_IMAGE
    objects = manifests(namespace, image, argv[2:])
    sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
