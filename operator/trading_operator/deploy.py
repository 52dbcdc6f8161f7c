"""How the operator itself runs, as manifests the chart (issue 8) renders the same way: one
replica with the Recreate strategy (two operators would fight over the same children; kopf runs
`--standalone`, no peering), kopf's liveness endpoint as the liveness probe, its Prometheus
metrics on their own port, the restricted security context of every pod.

`python -m trading_operator.deploy NAMESPACE IMAGE` prints them.
"""

from __future__ import annotations

import sys
from typing import Any

import yaml

from trading_operator import names, rbac
from trading_operator.settings import DEFAULT_IMAGE

LIVENESS_PORT = 8081
METRICS_PORT = 9090


def manifests(namespace: str, image: str) -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": names.MANAGER, "app.kubernetes.io/part-of": "tradingsystem"}
    meta = {"name": names.MANAGER, "namespace": namespace, "labels": labels}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        rbac.cluster_role(),
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": names.MANAGER, "labels": labels},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": names.MANAGER,
            },
            "subjects": [{"kind": "ServiceAccount", "name": names.MANAGER, "namespace": namespace}],
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": meta,
            "spec": {
                "replicas": 1,
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": {"app.kubernetes.io/name": names.MANAGER}},
                "template": {"metadata": {"labels": labels}, "spec": _pod(image)},
            },
        },
    ]


def _pod(image: str) -> dict[str, Any]:
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
                "command": [
                    "kopf",
                    "run",
                    "-m",
                    "trading_operator.handlers",
                    "--standalone",
                    "--all-namespaces",
                    f"--liveness=http://0.0.0.0:{LIVENESS_PORT}/healthz",
                ],
                "env": [
                    {"name": "TS_OPERATOR_IMAGE", "value": image},
                    {"name": "TS_OPERATOR_METRICS_PORT", "value": str(METRICS_PORT)},
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
    namespace = argv[0] if argv else "trading-system"
    image = argv[1] if len(argv) > 1 else DEFAULT_IMAGE
    sys.stdout.write(yaml.safe_dump_all(manifests(namespace, image), sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
