"""Events about a TradingSystem (`kubectl describe ts NAME`, `kubectl get events`), posted by the
operator's own client: kopf's `kopf.event` works only inside a kopf handler, and passes also run
from the resync loop. Best effort: an Event that cannot be posted is logged, never raised."""

from __future__ import annotations

import datetime
import logging
from typing import Any

from components.core.errors import KubeApiError
from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from trading_operator import names

log = logging.getLogger(__name__)


async def post(api: KubeApi, body: dict[str, Any], type_: str, reason: str, message: str) -> None:
    meta = body["metadata"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": body.get("apiVersion", f"{names.GROUP}/v1alpha1"),
            "kind": body.get("kind", "TradingSystem"),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": names.MANAGER},
        "reportingComponent": names.MANAGER,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await api.create(kubeapi.path("v1", "events", meta["namespace"]), event)
    except KubeApiError as exc:
        log.warning("Could not post the Event %s about %s: %s", reason, meta["name"], exc)
