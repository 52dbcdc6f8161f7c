"""The operator's own clock: every `poll_s` it polls each known system's risk manager for its
breaker (the fallback to the risk manager's own report), and every `resync_s` it reconciles each
system even if nothing was seen to change (a missed event, a hand edit of a child that is not
watched). One task for the operator, stopped at once on shut-down; kopf's per-object timers
would each hold the shut-down for seconds.
"""

from __future__ import annotations

import asyncio
import logging
import time

import aiohttp

from components.core.errors import KubeApiError
from trading_operator import breaker, conditions, halt, kinds, metrics
from trading_operator.reconcile import Reconciler
from trading_operator.settings import OperatorSettings

log = logging.getLogger(__name__)


async def run(
    reconciler: Reconciler, http: aiohttp.ClientSession, settings: OperatorSettings
) -> None:
    loop = asyncio.get_running_loop()
    last_resync = loop.time()
    while not reconciler.closed:
        await asyncio.sleep(settings.poll_s)
        due = loop.time() - last_resync >= settings.resync_s
        if due:
            last_resync = loop.time()
        systems = sorted(reconciler.seen)
        await asyncio.gather(
            *(_tick(reconciler, http, settings, ns, name, due) for ns, name in systems)
        )


async def _tick(
    reconciler: Reconciler,
    http: aiohttp.ClientSession,
    settings: OperatorSettings,
    namespace: str,
    name: str,
    resync: bool,
) -> None:
    try:
        if (
            await poll_breaker(reconciler, http, settings, namespace, name)
            or resync
            or await newly_stale(reconciler, namespace, name)
        ):
            await reconciler.request(namespace, name)
    except Exception as exc:  # one system's failure must not stop the others' resync
        metrics.ERRORS.labels("resync").inc()
        log.warning("Resync of %s/%s failed: %s", namespace, name, exc)


async def newly_stale(reconciler: Reconciler, namespace: str, name: str) -> bool:
    """Whether the breaker report went stale and the system is not yet halted for it: no event
    says so (silence is the absence of events), so each poll tick looks."""
    try:
        body = await reconciler.api.get(kinds.system_url(namespace, name))
    except KubeApiError:
        return False
    if halt.silence_s(body, time.time_ns()) is None:
        return False
    halted = conditions.find((body.get("status") or {}).get("conditions") or [], "Halted") or {}
    return halted.get("reason") != "BreakerStale"


async def poll_breaker(
    reconciler: Reconciler,
    http: aiohttp.ClientSession,
    settings: OperatorSettings,
    namespace: str,
    name: str,
) -> bool:
    """Poll the risk manager; write what is news into status.breaker. True when it wrote."""
    url = breaker.status_url(settings.risk_status_url, name, namespace)
    report = await breaker.poll(http, url)
    if report is None:
        return False
    try:
        body = await reconciler.api.get(kinds.system_url(namespace, name))
    except KubeApiError:
        return False
    known = (body.get("status") or {}).get("breaker") or {}
    if not breaker.is_news(report, known):
        # The same breaker, but an answer: the risk manager lives. Refresh its heartbeat when
        # it is a third of the way to stale (its own report may be what is failing).
        beat_s = halt.stale_after_s(body.get("spec") or {}) / 3
        if (report.heartbeat_ns - int(known.get("heartbeat_ns") or 0)) / 1e9 < beat_s:
            return False
        heartbeat = {"status": {"breaker": {"heartbeat_ns": report.heartbeat_ns}}}
        await reconciler.api.patch(kinds.system_url(namespace, name, "status"), heartbeat)
        return False
    patch = {"status": {"breaker": report.model_dump(mode="json")}}
    await reconciler.api.patch(kinds.system_url(namespace, name, "status"), patch)
    log.warning("Breaker of %s/%s polled from the risk manager: %s.", namespace, name, report.state)
    return True
