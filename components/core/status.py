"""What a TradingSystem reports in `status` on Kubernetes: the one definition shared by the CRD
(its status schema), the operator (the writer), the risk manager (it writes `breaker`) and the
`kubectl trading` plugin (the reader).

Names follow Kubernetes conventions for status (`observedGeneration`, `lastTransitionTime`) and
the Condition shape of `metav1.Condition`, so that `kubectl wait --for=condition=Ready` works;
`breaker` keeps the snake_case of the risk manager's `/status` JSON, which it mirrors.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from components.core.events import BreakerState

ConditionType = Literal["Ready", "Halted", "BreakerOpen", "Degraded"]
Phase = Literal["Pending", "Running", "Degraded", "Halted", "Failed", "Terminating"]
HISTORY_LENGTH = 20  # breaker transitions kept in status (the state log keeps them all)


class _Status(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Condition(_Status):
    type: ConditionType
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$", max_length=1024)
    message: str = Field("", max_length=32768)
    lastTransitionTime: str = Field(
        description="RFC 3339 time of the last status change.",
        json_schema_extra={"format": "date-time"},
    )
    observedGeneration: int = Field(0, ge=0)


class ComponentStatus(_Status):
    desiredReplicas: int = Field(0, ge=0)
    readyReplicas: int = Field(0, ge=0)
    ready: bool = False


class BreakerTransition(_Status):
    state: BreakerState
    trigger: str = ""
    reason: str = Field("", max_length=1024)
    ts_ns: int = Field(0, ge=0)


class BreakerStatus(_Status):
    """The risk manager's breaker, as it reported it (or as the operator polled it)."""

    state: BreakerState
    trigger: str = Field("", description="What tripped or reset it, e.g. daily_loss, manual.")
    reason: str = Field("", max_length=1024)
    since_ns: int = Field(0, ge=0)
    history: list[BreakerTransition] = Field(default_factory=list, max_length=HISTORY_LENGTH)
    reported_by: Literal["risk", "poll"] = Field(
        "risk", description="risk: patched by the risk manager; poll: read from its /status."
    )
    heartbeat_ns: int = Field(
        0,
        ge=0,
        description=(
            "When the risk manager was last heard (its report, or an answered poll); refreshed "
            "every third of spec.breaker_stale_after_s even when nothing changes. 0: never."
        ),
    )

    @classmethod
    def from_risk(cls, breaker: Mapping[str, Any], reported_by: str) -> BreakerStatus:
        """From the `breaker` of the risk manager's /status JSON (raises ValidationError)."""
        keys = set(BreakerTransition.model_fields)
        history = [
            {key: value for key, value in entry.items() if key in keys}
            for entry in breaker.get("history") or []
            if isinstance(entry, Mapping)
        ]
        return cls.model_validate(
            {
                "state": breaker.get("state"),
                "trigger": str(breaker.get("trigger") or ""),
                "reason": str(breaker.get("reason") or "")[:1024],
                "since_ns": breaker.get("since_ns") or 0,
                "history": history[-HISTORY_LENGTH:],
                "reported_by": reported_by,
                "heartbeat_ns": time.time_ns(),
            }
        )


class PositionsSummary(_Status):
    open: int = Field(0, ge=0, description="Symbols with a non-zero position.")
    equity: str = ""
    realized_pnl: str = ""


class TradingSystemStatus(_Status):
    observedGeneration: int | None = Field(None, ge=0)
    phase: Phase | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    components: dict[str, ComponentStatus] = Field(default_factory=dict)
    ready: str | None = Field(None, description="Ready components out of desired, e.g. 4/5.")
    halted: bool | None = None
    haltReason: str | None = Field(None, max_length=1024)
    breaker: BreakerStatus | None = None
    positions: PositionsSummary | None = None
    configHash: str | None = None
