"""The ConfigMap every component reads: the spec as a manifest, the same file a local run reads.

Kubernetes-only fields and `halted` stay out of it: they act through the pod specs and the
execution engine's replicas, so halting or resizing a pod does not roll every component."""

from __future__ import annotations

import hashlib
from typing import Any

import yaml

from components.core.config import API_VERSION, KIND
from trading_operator import names
from trading_operator.builders.system import System

NOT_IN_CONFIG = {
    "halted",
    "resume_policy",
    "image",
    "pods",
    "storage",
    "monitoring",
    "credentials_secret",
}


def config_text(system: System) -> str:
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": system.name},
        "spec": system.spec.model_dump(mode="json", exclude=NOT_IN_CONFIG),
    }
    return yaml.safe_dump(manifest, sort_keys=True)


def config_hash(system: System) -> str:
    """Annotated on each pod template: a change of config rolls the pods."""
    return hashlib.sha256(config_text(system).encode()).hexdigest()[:16]


def config_map(system: System) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": system.metadata(names.config_map(system.name)),
        "data": {names.CONFIG_FILE: config_text(system)},
    }
