"""Deleting a TradingSystem, in order: halt first (execution to zero; its pods cancel their
working orders on SIGTERM), wait until no execution pod is left (bounded), then the other
children, market data and strategy before risk and the broker. The state volumes stay unless the
spec says `storage.retain_on_delete: false`."""

from __future__ import annotations

import datetime
import logging
from typing import Any

import kopf

from components.runtime.kubeapi import KubeApi
from trading_operator import events, kinds, names
from trading_operator.reconcile import Reconciler

log = logging.getLogger(__name__)
# Deleted after the Deployments are gone, in this order (the PVCs are decided apart).
REST = ("Service", "NetworkPolicy", "ConfigMap", "RoleBinding", "Role", "ServiceAccount")


async def teardown(reconciler: Reconciler, body: dict[str, Any]) -> None:
    api = reconciler.api
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    await reconciler.scale_execution_to_zero(namespace, name, "Deleting")

    selector = names.selector_text(names.selector(name, "execution"))
    pods = await api.list(kinds.collection("Pod", namespace), selector)
    waited_s = _since(body["metadata"].get("deletionTimestamp"))
    if pods and waited_s < reconciler.settings.teardown_timeout_s:
        raise kopf.TemporaryError(
            f"Waiting for {len(pods)} execution pod(s) to cancel their orders and stop.",
            delay=min(reconciler.settings.retry_s, 1.0),
        )
    if pods:
        message = f"{len(pods)} execution pod(s) still running after {waited_s:.0f} s."
        await events.post(api, body, "Warning", "TeardownTimeout", message)

    for component in names.TEARDOWN_ORDER:
        await api.delete(kinds.url("Deployment", namespace, names.deployment(name, component)))
    selector = names.selector_text(names.selector(name))
    for kind in REST:
        for child in await api.list(kinds.collection(kind, namespace), selector):
            if _managed(child):
                await api.delete(kinds.url(kind, namespace, child["metadata"]["name"]))
    await _state_volumes(api, body, namespace, name)
    message = "Execution halted first, then every component; state volumes " + (
        "kept." if _retained(body) else "deleted."
    )
    await events.post(api, body, "Normal", "TornDown", message)


async def _state_volumes(api: KubeApi, body: dict[str, Any], namespace: str, name: str) -> None:
    retain = _retained(body)
    for component in names.STATEFUL:
        url = kinds.url("PersistentVolumeClaim", namespace, names.state_claim(name, component))
        if not retain:
            await api.delete(url)
        elif await api.find(url) is not None:
            # Kept: no owner left that the garbage collector could follow to it.
            await api.patch(url, {"metadata": {"ownerReferences": None}})


def _retained(body: dict[str, Any]) -> bool:
    return ((body.get("spec") or {}).get("storage") or {}).get(
        "retain_on_delete", True
    ) is not False


def _managed(child: dict[str, Any]) -> bool:
    labels = child["metadata"].get("labels") or {}
    return labels.get("app.kubernetes.io/managed-by") == names.MANAGER


def _since(timestamp: str | None) -> float:
    if not timestamp:
        return 0.0
    then = datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    return (datetime.datetime.now(datetime.UTC) - then).total_seconds()
