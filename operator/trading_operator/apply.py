"""Create-or-patch: the one way the operator writes a child. Idempotent: a child that already
holds what the builder wants is left alone (not even patched), so a pass that changes nothing
writes nothing; a child edited or deleted by hand gets the builder's version back."""

from __future__ import annotations

from typing import Any, Literal

from components.runtime.kubeapi import KubeApi
from trading_operator import kinds

Outcome = Literal["created", "patched", "unchanged"]
# What a builder owns in a child; anything else (status, server-set metadata) is the server's.
OWNED = ("spec", "data", "rules", "roleRef", "subjects", "automountServiceAccountToken")


async def apply(api: KubeApi, desired: dict[str, Any]) -> Outcome:
    meta = desired["metadata"]
    live = await api.find(kinds.of(desired))
    if live is None:
        await api.create(kinds.collection(desired["kind"], meta["namespace"]), desired)
        return "created"
    patch = changes(live, desired)
    if not patch:
        return "unchanged"
    await api.patch(kinds.of(desired), patch)
    return "patched"


def changes(live: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that gives `live` what `desired` says, or {} when it already has it."""
    patch: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for key in ("labels", "annotations", "ownerReferences"):
        if key in desired["metadata"] and not contains(
            live["metadata"].get(key), desired["metadata"][key]
        ):
            meta[key] = desired["metadata"][key]
    if meta:
        patch["metadata"] = meta
    for key in OWNED:
        if key in desired and not contains(live.get(key), desired[key]):
            patch[key] = desired[key]
    # A ConfigMap's files are all ours: a file added by hand goes too (null removes it).
    extra = set(live.get("data") or {}) - set(desired.get("data") or {})
    if "data" in desired and extra:
        patch["data"] = {**desired["data"], **dict.fromkeys(extra)}
    return patch


def contains(live: Any, desired: Any) -> bool:
    """Whether `live` holds everything in `desired`: the API server adds defaults (a container's
    terminationMessagePath, a Service's clusterIP), which are not a difference."""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(
            contains(live.get(key), value) for key, value in desired.items()
        )
    if isinstance(desired, list):
        if not desired:
            return not live  # an empty list and an absent one are the same to the server
        return (
            isinstance(live, list)
            and len(live) == len(desired)
            and all(contains(a, b) for a, b in zip(live, desired, strict=True))
        )
    return bool(live == desired)
