"""The one way the operator writes a child: server-side apply under its field manager
(`names.MANAGER`), forced. The child then holds exactly what the builder says for the fields the
operator owns: a field the builder stops sending (an env var, a limit, a label) is removed by the
server, and fields other managers set (an HPA's replicas, a server default, a sidecar injector's
env) are left to them. Forced, because the operator owns its children: a hand edit of one of its
fields is taken back rather than answered with a 409 Conflict.

Idempotent: before applying, the desired object is compared with what the operator's own entries
of `metadata.managedFields` hold in the live child (its fields, their values there); when they
match, nothing is written, so a pass that changes nothing writes nothing. Map lists are matched
by the keys the server used in those entries (`k:{"name":"risk"}`), so this needs no copy of the
API's list semantics.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from components.runtime.kubeapi import KubeApi
from trading_operator import kinds, names

Outcome = Literal["created", "patched", "unchanged"]
# Server-set metadata: not part of what the operator applies or compares.
SERVER_META = {"uid", "resourceVersion", "generation", "creationTimestamp", "managedFields"}


async def apply(api: KubeApi, desired: dict[str, Any]) -> Outcome:
    url = kinds.of(desired)
    live = await api.find(url)
    if live is not None and holds(live, desired):
        return "unchanged"
    await api.apply(url, desired, force=True)
    return "created" if live is None else "patched"


def owned_fields(live: dict[str, Any], manager: str = names.MANAGER) -> dict[str, Any]:
    """The union of the manager's managedFields entries (apply and update) as one FieldsV1 tree:
    the fast halt's merge patch and teardown's are updates by the same manager."""
    tree: dict[str, Any] = {}
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == manager and not entry.get("subresource"):
            _union(tree, entry.get("fieldsV1") or {})
    return tree


def holds(live: dict[str, Any], desired: dict[str, Any]) -> bool:
    """Whether the operator's fields in `live` are exactly the desired ones, with its values."""
    tree = owned_fields(live)
    wanted = {k: v for k, v in desired.items() if k not in {"apiVersion", "kind", "status"}}
    meta = {
        k: v
        for k, v in (desired.get("metadata") or {}).items()
        if k not in SERVER_META | {"name", "namespace"}
    }
    wanted["metadata"] = meta
    if not meta:
        del wanted["metadata"]
    return _holds(tree, wanted, live)


def _holds(tree: dict[str, Any], desired: Any, live: Any) -> bool:
    if isinstance(desired, dict) and desired:
        if not isinstance(live, dict) or set(tree) != {f"f:{key}" for key in desired}:
            return False
        return all(_holds(tree[f"f:{k}"], v, live.get(k)) for k, v in desired.items())
    if isinstance(desired, list) and desired and any(k[:2] in {"k:", "v:"} for k in tree):
        return _holds_items(tree, desired, live)
    if tree != {}:
        return False  # owned as a map or list of fields, wanted as one value (or the reverse)
    if desired in ([], {}) and live in (None, [], {}):
        return True
    return bool(live == desired)


def _holds_items(tree: dict[str, Any], desired: list[Any], live: Any) -> bool:
    """A map or set list: each desired item is one owned item, with its owned fields."""
    if not isinstance(live, list) or len(tree) != len(desired):
        return False
    for key, subtree in tree.items():
        wanted = json.loads(key[2:])
        if key.startswith("v:"):
            if wanted not in desired or wanted not in live:
                return False
            continue
        item = _match(desired, wanted)
        found = _match(live, wanted)
        if item is None or found is None:
            return False
        fields = {k: v for k, v in subtree.items() if k != "."}
        if not _holds(fields, item, found):
            return False
    return True


def _match(items: list[Any], keys: dict[str, Any]) -> Any:
    return next(
        (i for i in items if isinstance(i, dict) and all(i.get(k) == v for k, v in keys.items())),
        None,
    )


def _union(into: dict[str, Any], tree: dict[str, Any]) -> None:
    for key, sub in tree.items():
        _union(into.setdefault(key, {}), sub)
