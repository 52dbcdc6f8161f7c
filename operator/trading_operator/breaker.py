"""The fallback way the breaker reaches the operator: polling the risk manager's `/status`
(the first way is the risk manager patching `status.breaker` itself, components/risk/
kube_status.py). A poll only ever moves the known state forward in time: it never replaces a
newer report with an older one, and a risk manager that does not answer changes nothing."""

from __future__ import annotations

import logging
from typing import Any

import aiohttp
import pydantic

from components.core.status import BreakerStatus
from trading_operator import metrics, names

log = logging.getLogger(__name__)


async def poll(session: aiohttp.ClientSession, url: str) -> BreakerStatus | None:
    try:
        async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as response:
            if response.status != 200:
                metrics.POLLS.labels("error").inc()
                return None
            document = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        metrics.POLLS.labels("unreachable").inc()
        log.debug("Risk manager at %s did not answer: %r.", url, exc)
        return None
    breaker = document.get("breaker") if isinstance(document, dict) else None
    if not isinstance(breaker, dict):
        metrics.POLLS.labels("no_breaker").inc()
        return None
    try:
        report = BreakerStatus.from_risk(breaker, "poll")
    except pydantic.ValidationError as exc:
        metrics.POLLS.labels("invalid").inc()
        log.warning("Risk manager at %s reported an unreadable breaker: %s.", url, exc)
        return None
    metrics.POLLS.labels("ok").inc()
    return report


def is_news(report: BreakerStatus, known: dict[str, Any] | None) -> bool:
    """Whether the polled breaker should replace what the status says."""
    if not known:
        return True
    if (report.state, report.reason) == (known.get("state"), known.get("reason")):
        return False
    return report.since_ns > int(known.get("since_ns") or 0)


def status_url(template: str, system: str, namespace: str) -> str:
    return template.format(service=names.metrics_service(system, "risk"), namespace=namespace)
