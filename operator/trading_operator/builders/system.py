"""What every builder reads: the system's identity, its validated spec, and the operator's
decisions for this pass (the execution engine's replicas, the image to default to)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.core.config import TradingSystemSpec
from trading_operator import names


@dataclass(frozen=True)
class System:
    name: str
    namespace: str
    uid: str
    spec: TradingSystemSpec
    default_image: str
    execution_replicas: int  # 0 while halted: decided by `halt`, never by a builder

    @property
    def owner(self) -> dict[str, Any]:
        return names.owner_reference({"metadata": {"name": self.name, "uid": self.uid}})

    def metadata(self, name: str, component: str | None = None, owned: bool = True) -> dict:
        meta: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": names.labels(self.name, component),
        }
        if owned:
            meta["ownerReferences"] = [self.owner]
        return meta

    def image(self, component: str) -> str:
        pod = getattr(self.spec.pods, component)
        return pod.image or self.spec.image or self.default_image
