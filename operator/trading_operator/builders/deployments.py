"""One Deployment per component, each running `tradingsystem component NAME` on the ConfigMap.

Every pod runs under the restricted Pod Security Standard: non-root, read-only root filesystem
(only /tmp and, for risk and execution, the state volume are writable), no privilege escalation,
no capabilities, the runtime's default seccomp profile. The strategy is Recreate everywhere: two
brokers, risk managers or execution engines side by side would split the bus or share a log.
"""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.configmaps import config_hash
from trading_operator.builders.services import broker_ports
from trading_operator.builders.system import System

ORDER = ("broker", "risk", "strategy", "marketdata", "execution")
USER_ID = 10001
# Time to cancel working orders at the venue and flush the order log (execution), or to flush the
# state log (risk), after SIGTERM; the components bound their own shutdown below it.
GRACE_S = {"execution": 60, "risk": 30}
CREDENTIAL_KEYS = ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY")
NEEDS_CREDENTIALS = ("marketdata", "execution")


def replicas(system: System, component: str) -> int:
    if component == "execution":
        return system.execution_replicas
    pod = getattr(system.spec.pods, component)
    return int(getattr(pod, "replicas", 1))


def deployment(system: System, component: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": system.metadata(names.deployment(system.name, component), component),
        "spec": {
            "replicas": replicas(system, component),
            "revisionHistoryLimit": 3,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": names.selector(system.name, component)},
            "template": {
                "metadata": {
                    "labels": names.labels(system.name, component),
                    "annotations": {names.CONFIG_HASH: config_hash(system, component)},
                },
                "spec": _pod(system, component),
            },
        },
    }


def _pod(system: System, component: str) -> dict[str, Any]:
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": names.config_map(system.name)}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]
    if component in names.STATEFUL:
        claim = names.state_claim(system.name, component)
        volumes.append({"name": "state", "persistentVolumeClaim": {"claimName": claim}})
    pod: dict[str, Any] = {
        "automountServiceAccountToken": component == "risk",
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": GRACE_S.get(component, 15),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_container(system, component)],
        "volumes": volumes,
    }
    if component == "risk":
        pod["serviceAccountName"] = names.risk_account(system.name)
    return pod


def _container(system: System, component: str) -> dict[str, Any]:
    pod = getattr(system.spec.pods, component)
    ports = [{"name": "http", "containerPort": names.HTTP_PORT, "protocol": "TCP"}]
    if component == "broker":
        ports += [
            {"name": name, "containerPort": port, "protocol": "TCP"}
            for name, port in broker_ports(system)
        ]
    mounts = [
        {"name": "config", "mountPath": names.CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if component in names.STATEFUL:
        mounts.append({"name": "state", "mountPath": names.DATA_DIR})
    resources = {
        kind: amounts
        for kind, amounts in pod.resources.model_dump(mode="json", exclude_none=True).items()
        if amounts
    }
    return {
        "name": component,
        "image": system.image(component),
        "imagePullPolicy": "IfNotPresent",
        "command": [
            "tradingsystem",
            "component",
            component,
            "--config",
            f"{names.CONFIG_DIR}/{names.CONFIG_FILE}",
        ],
        "env": _env(system, component),
        "ports": ports,
        "resources": resources,
        "livenessProbe": _probe("/health", period_s=10, failures=3),
        "readinessProbe": _probe("/ready", period_s=5, failures=2),
        "startupProbe": _probe("/health", period_s=2, failures=30),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "volumeMounts": mounts,
    }


def _env(system: System, component: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": "TS_SYSTEM_NAME", "value": system.name},
        {"name": "TS_COMPONENT_ID", "value": component},
        {"name": "TS_LISTEN_HOST", "value": "0.0.0.0"},
        {"name": "TS_HTTP_PORT", "value": str(names.HTTP_PORT)},
        {"name": "TS_BROKER_HOST", "value": names.broker_service(system.name)},
        {"name": "TS_DATA_DIR", "value": names.DATA_DIR if component in names.STATEFUL else "/tmp"},
        {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"},
    ]
    if component == "risk":
        # Turns on the risk manager's status reporter (components/risk/kube_status.py).
        namespace = {"fieldRef": {"fieldPath": "metadata.namespace"}}
        env.append({"name": "TS_KUBE_NAMESPACE", "valueFrom": namespace})
    secret = system.spec.credentials_secret
    if secret is not None and component in NEEDS_CREDENTIALS:
        env += [
            {"name": key, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
            for key in CREDENTIAL_KEYS
        ]
    env += [
        {"name": variable.name, "value": variable.value} for variable in pod_env(system, component)
    ]
    return env


def pod_env(system: System, component: str) -> list[Any]:
    return list(getattr(system.spec.pods, component).env)


def _probe(path: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }
