"""The ConfigMap every component reads: the spec as a manifest, the same file a local run reads.

Kubernetes-only fields and `halted` stay out of it: they act through the pod specs and the
execution engine's replicas, so halting or resizing a pod does not roll every component. Each
pod template carries the hash of only what its component reads (`READS`): a change rolls the
components it concerns, so a strategy's parameters never restart the execution engine (which
cancels its working orders when it stops)."""

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


# The parts of the spec each component reads, as dotted paths; every component's bus reads
# `broker`. A component that starts reading another part must say so here, or it will not roll.
READS: dict[str, tuple[str, ...]] = {
    "broker": ("broker",),
    "marketdata": ("broker", "symbols", "marketdata"),
    "strategy": ("broker", "symbols", "strategy"),
    "risk": ("broker", "symbols", "risk"),
    "execution": (
        "broker",
        "symbols",
        "execution",
        "risk.approval_timeout_ms",  # refuses approvals older than this
        "strategy.risk_timeout_ms",  # the deadline of the checks it sends for its algos
    ),
}


def config_hash(system: System, component: str | None = None) -> str:
    """The hash of what `component` reads (annotated on its pod template), or of the whole
    config (`status.configHash`)."""
    spec = system.spec.model_dump(mode="json", exclude=NOT_IN_CONFIG)
    document: Any = spec if component is None else {p: _at(spec, p) for p in READS[component]}
    text = yaml.safe_dump(document, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _at(document: dict[str, Any], path: str) -> Any:
    for key in path.split("."):
        document = document[key]
    return document


def config_map(system: System) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": system.metadata(names.config_map(system.name)),
        "data": {names.CONFIG_FILE: config_text(system)},
    }
