"""The garbage collector of the emulated API server: what Kubernetes' GC controller does with
owner references (Kubernetes docs, "Garbage Collection", "Owners and Dependents"), run at once
rather than eventually, so that tests can rely on what a cluster would end with:

- background (the default): the owner goes; then each dependent whose owners are all gone is
  deleted (through its own finalizers, and its own dependents in turn); a dependent that still
  has a live owner only loses the reference to the one that went;
- foreground: the owner stays, with a `deletionTimestamp` and the `foregroundDeletion`
  finalizer, while its dependents are deleted; it goes once none with `blockOwnerDeletion` is
  left;
- orphan: the dependents lose their reference to the owner and stay.
"""

from __future__ import annotations

import copy
from typing import Any, Protocol

FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
POLICIES = {"Background", "Foreground", "Orphan"}


class Store(Protocol):
    """What the collector needs of the server (ApiServer implements it)."""

    _objects: dict[Any, Any]

    def _delete(self, resource: Any, namespace: str | None, name: str) -> dict[str, Any]: ...

    def _update(
        self,
        resource: Any,
        namespace: str | None,
        name: str,
        replacement: Any,
        patch: Any,
        patch_kind: str,
        sub: str,
        manager: str | None,
    ) -> dict[str, Any]: ...


def dependents(store: Store, uid: str) -> list[tuple[Any, dict[str, Any]]]:
    return [
        (key, obj.raw)
        for key, obj in list(store._objects.items())
        if not obj.deleted
        and any(ref.get("uid") == uid for ref in obj.raw["metadata"].get("ownerReferences") or [])
    ]


def exists(store: Store, uid: str) -> bool:
    return any(
        not obj.deleted and obj.raw["metadata"].get("uid") == uid for obj in store._objects.values()
    )


def delete_dependents(store: Store, owner: dict[str, Any], policy: str) -> None:
    """Once `owner` is gone (background) or while it waits (foreground), or orphaning."""
    uid = owner["metadata"]["uid"]
    for (resource, namespace, name), obj in dependents(store, uid):
        refs = obj["metadata"].get("ownerReferences") or []
        others = [r for r in refs if r.get("uid") != uid]
        if policy == "Orphan" or any(exists(store, r.get("uid", "")) for r in others):
            replacement = copy.deepcopy(obj)
            replacement["metadata"]["ownerReferences"] = others
            store._update(resource, namespace, name, replacement, None, "", "", "garbage-collector")
        elif not obj["metadata"].get("deletionTimestamp"):
            store._delete(resource, namespace, name)


def release_waiting_owners(store: Store, gone: dict[str, Any]) -> None:
    """An owner deleted in the foreground goes once no blocking dependent is left."""
    for ref in gone["metadata"].get("ownerReferences") or []:
        for key, obj in list(store._objects.items()):
            if obj.deleted:
                continue
            meta = obj.raw["metadata"]
            if meta.get("uid") != ref.get("uid"):
                continue
            if FOREGROUND not in (meta.get("finalizers") or []):
                continue
            blocking = [
                d
                for _, d in dependents(store, meta["uid"])
                if any(
                    r.get("uid") == meta["uid"] and r.get("blockOwnerDeletion")
                    for r in d["metadata"].get("ownerReferences") or []
                )
            ]
            if not blocking:
                replacement = copy.deepcopy(obj.raw)
                replacement["metadata"]["finalizers"] = [
                    f for f in meta["finalizers"] if f != FOREGROUND
                ]
                store._update(*key, replacement, None, "", "", "garbage-collector")


def removed(store: Store, obj: dict[str, Any]) -> None:
    """`obj` is gone from the store: collect what it owned, release what waited for it."""
    delete_dependents(store, obj, "Background")
    release_waiting_owners(store, obj)
