"""The emulated API server's garbage collector (`garbage.py`): owner references decide what
goes with an owner, in the background, in the foreground (blockOwnerDeletion) or not at all
(orphan), as Kubernetes' GC controller does it."""

from __future__ import annotations

from typing import Any

from components.runtime.kubeapi import KubeApi
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE

CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


async def _owned(client: KubeApi, name: str, *owners: dict[str, Any], **meta: Any) -> None:
    refs = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": o["metadata"]["name"],
            "uid": o["metadata"]["uid"],
            "blockOwnerDeletion": True,
        }
        for o in owners
    ]
    await client.create(CONFIGMAPS, {"metadata": {"name": name, "ownerReferences": refs, **meta}})


def _exists(api: ApiServer, name: str) -> bool:
    return api.object("v1", "configmaps", NAMESPACE, name) is not None


async def test_delete_owner_in_background_then_dependents_go_and_shared_ones_stay(
    api: ApiServer, client: KubeApi
) -> None:
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "owner"}})
    other = await client.create(CONFIGMAPS, {"metadata": {"name": "other"}})
    await _owned(client, "child", owner)
    await _owned(client, "shared", owner, other)
    grandchild_owner = api.object("v1", "configmaps", NAMESPACE, "child")
    await _owned(client, "grandchild", grandchild_owner)

    await client.delete(f"{CONFIGMAPS}/owner")
    assert not _exists(api, "owner") and not _exists(api, "child")
    assert not _exists(api, "grandchild")
    shared = api.object("v1", "configmaps", NAMESPACE, "shared")
    assert [r["name"] for r in shared["metadata"]["ownerReferences"]] == ["other"]


async def test_delete_owner_in_foreground_then_it_waits_for_blocking_dependents(
    api: ApiServer, client: KubeApi
) -> None:
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "owner"}})
    await _owned(client, "slow", owner, finalizers=["example.com/flush"])

    await client._request(
        "DELETE",
        f"{CONFIGMAPS}/owner",
        params={"propagationPolicy": "Foreground"},
        what="deleting in the foreground",
    )
    waiting = api.object("v1", "configmaps", NAMESPACE, "owner")
    assert waiting["metadata"]["deletionTimestamp"]
    assert "foregroundDeletion" in waiting["metadata"]["finalizers"]
    assert api.object("v1", "configmaps", NAMESPACE, "slow")["metadata"]["deletionTimestamp"]

    await client.patch(f"{CONFIGMAPS}/slow", {"metadata": {"finalizers": None}})
    assert not _exists(api, "slow") and not _exists(api, "owner")


async def test_delete_owner_orphaning_then_dependents_stay_without_the_reference(
    api: ApiServer, client: KubeApi
) -> None:
    owner = await client.create(CONFIGMAPS, {"metadata": {"name": "owner"}})
    await _owned(client, "child", owner)
    await client._request(
        "DELETE",
        f"{CONFIGMAPS}/owner",
        params={"propagationPolicy": "Orphan"},
        what="deleting, orphaning",
    )
    child = api.object("v1", "configmaps", NAMESPACE, "child")
    assert not _exists(api, "owner") and not child["metadata"].get("ownerReferences")
