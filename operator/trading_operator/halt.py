"""Whether a system is halted, and why. Decided from the raw object, before the spec is
validated, so that nothing (not even an invalid spec) lets the execution engine run while
`spec.halted` is set or the breaker is open.

    breaker open                        -> halted (BreakerOpen); with resume_policy manual the
                                           halt is latched: spec.halted is set, so it outlives
                                           the trip, the operator and the risk manager
    breaker report stale                -> halted (BreakerStale): nobody knows the breaker; the
                                           last heartbeat (before the first report: the
                                           system's creation) is older than
                                           spec.breaker_stale_after_s; latched as a trip is
    spec.halted, latched by the breaker -> halted (BreakerTripped) until someone clears it
    spec.halted                         -> halted (ManualHalt)
    otherwise (closed or half-open)     -> trading; under the automatic policy the breaker
                                           reaching half-open resumes a system it halted
"""

from __future__ import annotations

import datetime
import time
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


DEFAULT_STALE_AFTER_S = 30.0


def decide(body: dict[str, Any], now_ns: int | None = None) -> Halt:
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
    silent_s = silence_s(body, time.time_ns() if now_ns is None else now_ns)
    if silent_s is not None:
        manual = spec.get("resume_policy", "manual") != "automatic"
        return Halt(
            True,
            "BreakerStale",
            f"The breaker is unknown: no report from the risk manager for {silent_s:.0f} s "
            f"(spec.breaker_stale_after_s is {stale_after_s(spec):g}).",
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


def stale_after_s(spec: dict[str, Any]) -> float:
    value = spec.get("breaker_stale_after_s", DEFAULT_STALE_AFTER_S)
    return float(value) if isinstance(value, int | float) else DEFAULT_STALE_AFTER_S


def silence_s(body: dict[str, Any], now_ns: int) -> float | None:
    """How long the risk manager has been silent, if longer than the spec allows; else None."""
    breaker = (body.get("status") or {}).get("breaker") or {}
    heartbeat_ns = breaker.get("heartbeat_ns") or 0
    if not isinstance(heartbeat_ns, int) or heartbeat_ns <= 0:
        heartbeat_ns = _created_ns(body)
        if heartbeat_ns is None:
            return None  # nothing to measure from (an object the server did not stamp)
    silent_s = (now_ns - heartbeat_ns) / 1e9
    return silent_s if silent_s > stale_after_s(body.get("spec") or {}) else None


def _created_ns(body: dict[str, Any]) -> int | None:
    created = (body.get("metadata") or {}).get("creationTimestamp")
    try:
        moment = datetime.datetime.fromisoformat(str(created).replace("Z", "+00:00"))
    except ValueError:
        return None
    return int(moment.timestamp()) * 1_000_000_000


def latch_patch(halt: Halt, body: dict[str, Any]) -> dict[str, Any] | None:
    """The patch of the TradingSystem this decision needs: set spec.halted (and why) when the
    breaker latches a halt; drop the stale 'why' once someone cleared spec.halted."""
    annotations = (body.get("metadata") or {}).get("annotations") or {}
    if halt.latch:
        breaker = (body.get("status") or {}).get("breaker") or {}
        why = (breaker.get("reason") if halt.reason == "BreakerOpen" else "") or halt.message
        return {
            "metadata": {"annotations": {names.HALTED_BY_BREAKER: why[:256]}},
            "spec": {"halted": True},
        }
    halted = (body.get("spec") or {}).get("halted") is True
    if not halted and names.HALTED_BY_BREAKER in annotations:
        return {"metadata": {"annotations": {names.HALTED_BY_BREAKER: None}}}
    return None
