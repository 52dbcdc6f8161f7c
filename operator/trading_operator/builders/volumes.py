"""The PersistentVolumeClaims of the risk manager's state log and the execution engine's order
log. Owned by the TradingSystem only when the spec does not retain them: an owner reference would
let the garbage collector delete positions and orders with the system."""

from __future__ import annotations

from typing import Any

from trading_operator import names
from trading_operator.builders.system import System


def state_claim(system: System, component: str) -> dict[str, Any]:
    storage = system.spec.storage
    meta = system.metadata(
        names.state_claim(system.name, component), component, owned=not storage.retain_on_delete
    )
    spec: dict[str, Any] = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": storage.size}},
    }
    if storage.storage_class is not None:
        spec["storageClassName"] = storage.storage_class
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta, "spec": spec}
