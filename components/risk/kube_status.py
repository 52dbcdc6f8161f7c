"""The risk manager's report to Kubernetes: its breaker (and a summary of positions) written into
`status` of its own TradingSystem, through the status subresource, with the pod's own narrowly
scoped ServiceAccount (it may get and patch that one object's status, nothing else). The operator
reacts to `status.breaker` at once; polling `/status` is only its fallback.

It runs only on Kubernetes, when `TS_KUBE_NAMESPACE` is set (the operator sets it from the pod's
namespace). The risk manager hands it each `RiskState` it publishes (`report`, never blocking);
a task sends what changed: a breaker change at once, the positions summary at most every
`SUMMARY_INTERVAL_S`, and the breaker again every `heartbeat_s` with a fresh `heartbeat_ns`
even when nothing changed, so that the operator can tell a quiet risk manager from a dead one
(a report older than `spec.breaker_stale_after_s` halts execution). A failure to report never
stops the risk manager: it is logged, counted, and retried with backoff, and the breaker keeps
being enforced by the risk manager itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Mapping
from typing import Any

import prometheus_client as prom

from components.core.config import API_VERSION
from components.core.errors import KubeApiError, TradingSystemError
from components.core.events import RiskState
from components.core.status import BreakerStatus, PositionsSummary
from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi, KubeConfig

log = logging.getLogger(__name__)

NAMESPACE_ENV = "TS_KUBE_NAMESPACE"
PLURAL = "tradingsystems"
SUMMARY_INTERVAL_S = 5.0
RETRY_S = (0.5, 30.0)  # first and longest wait after a failed report


class KubeStatusReporter:
    def __init__(
        self,
        system: str,
        namespace: str,
        config: KubeConfig,
        registry: prom.CollectorRegistry,
        summary_interval_s: float = SUMMARY_INTERVAL_S,
        heartbeat_s: float = 10.0,
    ) -> None:
        self.url = kubeapi.path(API_VERSION, PLURAL, namespace, system, "status")
        self.config = config
        self.summary_interval_s = summary_interval_s
        self._latest: dict[str, Any] | None = None
        self._sent: dict[str, Any] = {}
        self._sent_summary_at = 0.0
        self.heartbeat_s = heartbeat_s
        self._sent_breaker_at = 0.0
        self._wake = asyncio.Event()
        self.reports = prom.Counter(
            "risk_kube_status_reports",
            "Reports of the breaker to the TradingSystem's status, by outcome.",
            ["outcome"],
            registry=registry,
        )

    def report(self, state: RiskState, breaker: Mapping[str, Any]) -> None:
        """Take the latest state (`breaker` as in the risk manager's /status); send it soon."""
        self._latest = {
            "breaker": BreakerStatus.from_risk(breaker, "risk").model_dump(
                mode="json",
                exclude={"heartbeat_ns"},  # stamped when sent
            ),
            "positions": PositionsSummary(
                open=sum(1 for p in state.positions if p.quantity),
                equity=str(state.equity),
                realized_pnl=str(state.realized_pnl),
            ).model_dump(mode="json"),
        }
        self._wake.set()

    async def run(self) -> None:
        """Send what changed until cancelled."""
        retry_s = RETRY_S[0]
        async with KubeApi(self.config) as api:
            while True:
                with contextlib.suppress(TimeoutError):  # the heartbeat is due then
                    await asyncio.wait_for(self._wake.wait(), self.heartbeat_s)
                self._wake.clear()
                patch = self._due()
                if not patch:
                    continue
                try:
                    await api.patch(self.url, {"status": patch})
                except KubeApiError as exc:
                    self.reports.labels("failed").inc()
                    log.warning(
                        "Could not report the breaker to %s: %s; retrying in %g s.",
                        self.url,
                        exc,
                        retry_s,
                    )
                    await asyncio.sleep(retry_s)
                    retry_s = min(retry_s * 2, RETRY_S[1])
                    self._wake.set()
                    continue
                retry_s = RETRY_S[0]
                self.reports.labels("sent").inc()
                self._sent.update(patch)
                if "positions" in patch:
                    self._sent_summary_at = time.monotonic()
                if "breaker" in patch:
                    self._sent_breaker_at = time.monotonic()
                    log.debug("Breaker %s reported to %s.", patch["breaker"]["state"], self.url)

    def _due(self) -> dict[str, Any]:
        latest = self._latest or {}
        patch: dict[str, Any] = {}
        breaker = latest.get("breaker")
        sent = dict(self._sent.get("breaker") or {})
        sent.pop("heartbeat_ns", None)
        beat_due = time.monotonic() - self._sent_breaker_at >= self.heartbeat_s
        if breaker is not None and (breaker != sent or beat_due):
            patch["breaker"] = {**breaker, "heartbeat_ns": time.time_ns()}
        summary_due = time.monotonic() - self._sent_summary_at >= self.summary_interval_s
        positions = latest.get("positions")
        if positions is not None and positions != self._sent.get("positions") and summary_due:
            patch["positions"] = positions
        return patch


def from_environment(
    system: str,
    registry: prom.CollectorRegistry,
    environ: Mapping[str, str] | None = None,
    heartbeat_s: float = 10.0,
) -> KubeStatusReporter | None:
    """The reporter when running on Kubernetes (`TS_KUBE_NAMESPACE` set), else None."""
    env = os.environ if environ is None else environ
    namespace = env.get(NAMESPACE_ENV)
    if not namespace:
        return None
    try:
        config = KubeConfig.from_environment(env)
    except TradingSystemError as exc:
        log.error("%s is set but no Kubernetes API is configured: %s.", NAMESPACE_ENV, exc)
        return None
    return KubeStatusReporter(system, namespace, config, registry, heartbeat_s=heartbeat_s)
