"""Whether a system is halted, and why. Decided from the raw object, before the spec is
validated, so that nothing (not even an invalid spec) lets the execution engine run while
`spec.halted` is set or the breaker is open.

    breaker open                        -> halted (BreakerOpen); with resume_policy manual the
                                           halt is latched: spec.halted is set, so it outlives
                                           the trip, the operator and the risk manager
    spec.halted, latched by the breaker -> halted (BreakerTripped) until someone clears it
    spec.halted                         -> halted (ManualHalt)
    otherwise (closed or half-open)     -> trading; under the automatic policy the breaker
                                           reaching half-open resumes a system it halted
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trading_operator import names


@dataclass(frozen=True)
class Halt:
    halted: bool
    reason: str  # the Halted condition's reason
    message: str
    latch: bool = False  # set spec.halted now (the breaker opened under the manual policy)

    @property
    def execution_replicas(self) -> int:
        return 0 if self.halted else 1


def decide(body: dict[str, Any]) -> Halt:
    spec = body.get("spec") or {}
    breaker = (body.get("status") or {}).get("breaker") or {}
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    halted = spec.get("halted") is True
    if breaker.get("state") == "open":
        why = breaker.get("reason") or "no reason given"
        manual = spec.get("resume_policy", "manual") != "automatic"
        return Halt(
            True,
            "BreakerOpen",
            f"The risk manager's circuit breaker is open: {why}.",
            latch=manual and not halted,
        )
    if halted and names.HALTED_BY_BREAKER in annotations:
        return Halt(
            True,
            "BreakerTripped",
            f"Halted when the breaker tripped ({annotations[names.HALTED_BY_BREAKER]}); "
            "resume_policy is manual: clear spec.halted (kubectl trading resume) to resume.",
        )
    if halted:
        return Halt(True, "ManualHalt", "spec.halted is true.")
    return Halt(False, "Trading", "Not halted.")


def latch_patch(halt: Halt, body: dict[str, Any]) -> dict[str, Any] | None:
    """The patch of the TradingSystem this decision needs: set spec.halted (and why) when the
    breaker latches a halt; drop the stale 'why' once someone cleared spec.halted."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if halt.latch:
        why = ((body.get("status") or {}).get("breaker") or {}).get("reason") or "breaker open"
        return {
            "metadata": {"annotations": {names.HALTED_BY_BREAKER: why[:256]}},
            "spec": {"halted": True},
        }
    halted = (body.get("spec") or {}).get("halted") is True
    if not halted and names.HALTED_BY_BREAKER in annotations:
        return {"metadata": {"annotations": {names.HALTED_BY_BREAKER: None}}}
    return None
