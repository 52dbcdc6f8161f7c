"""The only writer of a TradingSystem's status (apart from `breaker` and `positions`, which the
risk manager reports). It writes only when something changed, and turns every condition
transition into an Event."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from components.core.status import ComponentStatus, TradingSystemStatus
from components.runtime.kubeapi import KubeApi
from trading_operator import conditions, events, kinds
from trading_operator.halt import Halt

WARNINGS = {"Halted": "True", "BreakerOpen": "True", "Degraded": "True", "Ready": "False"}


@dataclass
class Observed:
    """What one pass found: the facts the status is made of."""

    generation: int
    halt: Halt
    components: dict[str, ComponentStatus] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # children that could not be applied
    invalid: str | None = None  # the spec's problems, when it is invalid
    missing: str | None = None  # what the pods will lack to start (e.g. Alpaca credentials)
    config_hash: str | None = None
    terminating: bool = False


def build(observed: Observed, previous: dict[str, Any]) -> dict[str, Any]:
    before = list(previous.get("conditions") or [])
    breaker = (previous.get("breaker") or {}).get("state")
    desired = {name: c for name, c in observed.components.items() if c.desiredReplicas > 0}
    ready = [name for name, c in desired.items() if c.ready]
    all_ready = bool(desired) and len(ready) == len(desired)
    was_ready = (conditions.find(before, "Ready") or {}).get("status") == "True"
    halt = observed.halt
    if observed.invalid is not None:
        ready_reason, degraded_reason, message = "InvalidSpec", "InvalidSpec", observed.invalid
    elif observed.problems:
        ready_reason, degraded_reason = "ApplyFailed", "ApplyFailed"
        message = "; ".join(observed.problems)
    elif observed.missing is not None:
        ready_reason, degraded_reason, message = (
            "MissingCredentials",
            "MissingCredentials",
            observed.missing,
        )
    elif not all_ready:
        waiting = sorted(set(desired) - set(ready))
        ready_reason = "ComponentsNotReady"
        degraded_reason = "ComponentsNotReady" if was_ready else "AsExpected"
        message = f"Not ready: {', '.join(waiting)}."
    else:
        ready_reason, degraded_reason, message = "AllComponentsReady", "AsExpected", ""
    if halt.halted and ready_reason == "AllComponentsReady":
        ready_reason, message = "Halted", halt.message
    is_ready = ready_reason == "AllComponentsReady"
    degraded = degraded_reason != "AsExpected"
    gen = observed.generation
    current = [
        conditions.condition("Ready", is_ready, ready_reason, message, gen, before),
        conditions.condition("Halted", halt.halted, halt.reason, halt.message, gen, before),
        conditions.condition(
            "BreakerOpen",
            breaker == "open",
            {
                "open": "BreakerTripped",
                "half_open": "BreakerHalfOpen",
                "closed": "BreakerClosed",
            }.get(breaker or "", "BreakerUnknown"),
            (previous.get("breaker") or {}).get("reason") or "",
            gen,
            before,
        ),
        conditions.condition(
            "Degraded", degraded, degraded_reason, message if degraded else "", gen, before
        ),
    ]
    if observed.terminating:
        phase = "Terminating"
    elif observed.invalid is not None:
        phase = "Failed"
    elif halt.halted:
        phase = "Halted"
    elif is_ready:
        phase = "Running"
    elif degraded:
        phase = "Degraded"
    else:
        phase = "Pending"
    status = TradingSystemStatus(
        observedGeneration=gen,
        phase=phase,
        conditions=current,
        components=observed.components,
        ready=f"{len(ready)}/{len(desired)}",
        halted=halt.halted,
        haltReason=halt.message if halt.halted else "",
        configHash=observed.config_hash,
    )
    return status.model_dump(mode="json", exclude_none=True, exclude={"breaker", "positions"})


async def write(api: KubeApi, body: dict[str, Any], status: dict[str, Any]) -> bool:
    """Patch the status when it differs; post an Event per condition transition."""
    previous = body.get("status") or {}
    if all(previous.get(key) == value for key, value in status.items()):
        return False
    meta = body["metadata"]
    await api.patch(kinds.system_url(meta["namespace"], meta["name"], "status"), {"status": status})
    for cond in conditions.transitions(previous.get("conditions") or [], status["conditions"]):
        kind = "Warning" if WARNINGS.get(cond["type"]) == cond["status"] else "Normal"
        text = f"{cond['type']} is {cond['status']}" + (
            f": {cond['message']}" if cond["message"] else "."
        )
        await events.post(api, body, kind, cond["reason"], text)
    return True
