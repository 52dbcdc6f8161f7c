"""The operator's own clock: every `poll_s` it polls each known system's risk manager for its
breaker (the fallback to the risk manager's own report), and every `resync_s` it reconciles each
system even if nothing was seen to change (a missed event, a hand edit of a child that is not
watched). One task for the operator, stopped at once on shut-down; kopf's per-object timers
would each hold the shut-down for seconds.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from components.core.errors import KubeApiError
from trading_operator import breaker, kinds, metrics
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
        if await poll_breaker(reconciler, http, settings, namespace, name) or resync:
            await reconciler.request(namespace, name)
    except Exception as exc:  # one system's failure must not stop the others' resync
        metrics.ERRORS.labels("resync").inc()
        log.warning("Resync of %s/%s failed: %s", namespace, name, exc)


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
    if not breaker.is_news(report, (body.get("status") or {}).get("breaker")):
        return False
    patch = {"status": {"breaker": report.model_dump(mode="json")}}
    await reconciler.api.patch(kinds.system_url(namespace, name, "status"), patch)
    log.warning("Breaker of %s/%s polled from the risk manager: %s.", namespace, name, report.state)
    return True
