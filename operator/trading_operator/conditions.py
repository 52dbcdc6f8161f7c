"""The conditions a TradingSystem reports (Ready, Halted, BreakerOpen, Degraded) in the shape of
`metav1.Condition`. A condition keeps its lastTransitionTime until its status changes, so
`kubectl wait --for=condition=Ready` and the Events tell real transitions only."""

from __future__ import annotations

import datetime
from typing import Any

TYPES = ("Ready", "Halted", "BreakerOpen", "Degraded")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def condition(
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    previous: list[dict[str, Any]],
) -> dict[str, Any]:
    text = "True" if status else "False"
    before = find(previous, type_)
    changed = before is None or before.get("status") != text
    return {
        "type": type_,
        "status": text,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now() if changed else before["lastTransitionTime"],
        "observedGeneration": generation,
    }


def find(conditions: list[dict[str, Any]], type_: str) -> dict[str, Any] | None:
    return next((c for c in conditions if c.get("type") == type_), None)


def transitions(
    previous: list[dict[str, Any]], current: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The conditions whose status or reason changed: each becomes an Event."""
    result = []
    for cond in current:
        before = find(previous, cond["type"])
        if before is None or (before.get("status"), before.get("reason")) != (
            cond["status"],
            cond["reason"],
        ):
            result.append(cond)
    return result
