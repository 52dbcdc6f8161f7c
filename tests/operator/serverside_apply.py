"""Server-side apply and field ownership for the emulated API server, as a real API server does
them (Kubernetes docs, "Server-Side Apply"), so that the operator's use of them is tested against
the semantics that would bite on a cluster:

- every write records who set which field in `metadata.managedFields` (one entry per field
  manager and operation, `fieldsType: FieldsV1`): a create or an update (merge, JSON patch, PUT)
  gives its manager the fields it changed and takes them from every other manager;
- an apply (`PATCH`, `application/apply-patch+yaml`, `fieldManager` required) makes the applied
  fields that manager's: a field the manager applied before and applies no more is removed,
  unless another manager owns it too; applying a different value to a field another manager
  owns is a 409 Conflict naming the field and the manager, unless `force=true`, which moves the
  field to the applier; the same value shared is not a conflict (both own it);
- lists follow their schema: `x-kubernetes-list-type: map` lists (containers, env, ports,
  volumes, ...) merge item by item on their `x-kubernetes-list-map-keys`, `set` lists by value,
  other lists are atomic (replaced whole, owned as one field); the official schemas and a CRD's
  schema say which.

Fields are paths of FieldsV1 keys: `f:<name>` for a map's field, `k:<json of the keys>` for an
item of a map list, `v:<json>` for an item of a set, and `.` ending the path of an item itself.
What is not tracked, as on a real server: identity and server-set metadata, and `status` on the
object's endpoint (a kind with a status subresource; status writes keep managedFields as they are).
"""

from __future__ import annotations

import copy
import datetime
import functools
import json
from collections.abc import Iterable
from typing import Any

import kubernetes_validate.utils as kv_utils

FieldPath = tuple[str, ...]
FieldSet = set[FieldPath]
Manager = tuple[str, str]  # (manager, operation: Apply | Update)
MISSING: Any = object()
UNTRACKED_META = {
    "name",
    "namespace",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
}
K8S_VERSION = "1.31"


class Conflict(Exception):
    """An apply would change fields another manager owns: (manager, field) pairs."""

    def __init__(self, conflicts: list[tuple[str, FieldPath]]) -> None:
        self.conflicts = conflicts
        lines = [f'conflict with "{manager}": {dotted(path)}' for manager, path in conflicts]
        super().__init__(f"Apply failed with {len(conflicts)} conflict(s): " + "; ".join(lines))


# --- schemas: which lists are maps or sets ---------------------------------------------------


class Schema:
    """A node of an OpenAPI schema, with `$ref`s resolved against its definitions."""

    def __init__(self, node: dict[str, Any] | None, definitions: dict[str, Any]) -> None:
        self._defs = definitions
        self.node = self._resolve(node or {})

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self._defs.get(node["$ref"].rsplit("/", 1)[-1], {})
        for option in node.get("allOf", ()):
            node = {**self._resolve(option), **{k: v for k, v in node.items() if k != "allOf"}}
        return node

    def field(self, name: str) -> Schema:
        properties = self.node.get("properties") or {}
        if name in properties:
            return Schema(properties[name], self._defs)
        extra = self.node.get("additionalProperties")
        return Schema(extra if isinstance(extra, dict) else None, self._defs)

    def items(self) -> Schema:
        return Schema(self.node.get("items"), self._defs)

    @property
    def list_type(self) -> str:
        return str(self.node.get("x-kubernetes-list-type") or "atomic")

    @property
    def map_keys(self) -> list[str]:
        keys = self.node.get("x-kubernetes-list-map-keys")
        if keys:
            return list(keys)
        merge_key = self.node.get("x-kubernetes-patch-merge-key")
        return [merge_key] if merge_key else []


@functools.cache
def _definitions() -> dict[str, Any]:
    folder = f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict"
    document = kv_utils.schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
    return dict(document.get("$defs") or document.get("definitions") or {})


@functools.cache
def _official(api_version: str, kind: str) -> dict[str, Any] | None:
    group, _, version = api_version.rpartition("/")
    group = group.split(".")[0]
    name = f"{kind.lower()}-{group}-{version}" if group else f"{kind.lower()}-{version}"
    try:
        return dict(
            kv_utils.schema_contents(
                f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict/{name}.json", K8S_VERSION
            )
        )
    except FileNotFoundError:
        return None


def schema_of(api_version: str, kind: str, crd_schema: dict[str, Any] | None = None) -> Schema:
    """The schema lists follow: the CRD's openAPIV3Schema, else the official one, else none
    (every list atomic, as for a kind the server knows nothing about)."""
    if crd_schema is not None:
        return Schema(crd_schema, {})
    return Schema(_official(api_version, kind), _definitions())


# --- field sets -----------------------------------------------------------------------------


def item_key(item: Any, schema: Schema) -> str:
    if schema.list_type == "set":
        return "v:" + json.dumps(item, separators=(",", ":"), sort_keys=True)
    keys = {key: item[key] for key in schema.map_keys if isinstance(item, dict) and key in item}
    return "k:" + json.dumps(keys, separators=(",", ":"), sort_keys=True)


def fields(obj: dict[str, Any], schema: Schema, with_status: bool) -> FieldSet:
    """Every field `obj` sets, as paths (what a manager owns after writing it)."""
    result: FieldSet = set()
    for key, value in obj.items():
        if key in {"apiVersion", "kind"} or (key == "status" and with_status):
            continue
        if key == "metadata" and isinstance(value, dict):
            meta = {k: v for k, v in value.items() if k not in UNTRACKED_META}
            if meta:
                _walk(meta, schema.field("metadata"), ("f:metadata",), result)
            continue
        _walk(value, schema.field(key), (f"f:{key}",), result)
    return result


def _walk(value: Any, schema: Schema, prefix: FieldPath, out: FieldSet) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _walk(item, schema.field(key), (*prefix, f"f:{key}"), out)
    elif isinstance(value, list) and value and schema.list_type in {"map", "set"}:
        items = schema.items()
        for item in value:
            key = item_key(item, schema)
            out.add((*prefix, key, "."))
            if schema.list_type == "map" and isinstance(item, dict):
                for name, field_value in item.items():
                    _walk(field_value, items.field(name), (*prefix, key, f"f:{name}"), out)
    else:
        out.add(prefix)


def get(obj: Any, path: FieldPath) -> Any:
    """The value at `path`, or MISSING."""
    value = obj
    for part in path:
        if part == ".":
            return value
        if part.startswith("f:"):
            if not isinstance(value, dict) or part[2:] not in value:
                return MISSING
            value = value[part[2:]]
        else:
            index = _find(value, part)
            if index is None:
                return MISSING
            value = value[index]
    return value


def _find(items: Any, key: str) -> int | None:
    if not isinstance(items, list):
        return None
    wanted = json.loads(key[2:])
    for index, item in enumerate(items):
        if key.startswith("v:") and item == wanted:
            return index
        if (
            key.startswith("k:")
            and isinstance(item, dict)
            and all(item.get(k) == v for k, v in wanted.items())
        ):
            return index
    return None


def remove(obj: dict[str, Any], path: FieldPath) -> None:
    """Remove the field (or the list item) at `path`, and the maps and lists it leaves empty."""
    if path[-1] == ".":
        parent, last = path[:-2], path[-2]
    else:
        parent, last = path[:-1], path[-1]
    container = get(obj, parent) if parent else obj
    if last.startswith("f:") and isinstance(container, dict):
        container.pop(last[2:], None)
    else:
        index = _find(container, last)
        if index is not None:
            del container[index]
    if parent and container in ({}, []):
        remove(obj, parent)


def to_fields_v1(paths: Iterable[FieldPath]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for part in path:
            node = node.setdefault(part, {})
    return tree


def from_fields_v1(tree: dict[str, Any], prefix: FieldPath = ()) -> FieldSet:
    result: FieldSet = set()
    for key, sub in tree.items():
        if sub:
            result |= from_fields_v1(sub, (*prefix, key))
        else:
            result.add((*prefix, key))
    return result


def dotted(path: FieldPath) -> str:
    """`.spec.template.spec.containers[{"name":"risk"}].env`, as a real server names a field."""
    parts = ("" if p == "." else f".{p[2:]}" if p.startswith("f:") else f"[{p[2:]}]" for p in path)
    return "".join(parts)


# --- managedFields --------------------------------------------------------------------------


def owners(obj: dict[str, Any] | None) -> dict[Manager, FieldSet]:
    result: dict[Manager, FieldSet] = {}
    for entry in ((obj or {}).get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        key = (str(entry.get("manager", "")), str(entry.get("operation", "Update")))
        result[key] = from_fields_v1(entry.get("fieldsV1") or {})
    return result


def _store(
    obj: dict[str, Any], entries: dict[Manager, FieldSet], before: dict[str, Any] | None
) -> None:
    """Write `entries` into obj's managedFields; an entry that did not change keeps its time."""
    previous = {
        (e.get("manager"), e.get("operation")): e
        for e in ((before or {}).get("metadata") or {}).get("managedFields") or []
    }
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    rendered = []
    for (manager, operation), paths in entries.items():
        if not paths:
            continue
        tree = to_fields_v1(paths)
        old = previous.get((manager, operation))
        unchanged = old is not None and old.get("fieldsV1") == tree
        rendered.append(
            {
                "manager": manager,
                "operation": operation,
                "apiVersion": obj.get("apiVersion", ""),
                "time": old["time"] if unchanged and old else now,
                "fieldsType": "FieldsV1",
                "fieldsV1": tree,
            }
        )
    obj.setdefault("metadata", {})["managedFields"] = rendered


def record_create(obj: dict[str, Any], manager: str, schema: Schema, with_status: bool) -> None:
    """A create: the creator owns every field it set."""
    obj.setdefault("metadata", {}).pop("managedFields", None)
    _store(obj, {(manager, "Update"): fields(obj, schema, with_status)}, None)


def record_update(
    old: dict[str, Any], new: dict[str, Any], manager: str, schema: Schema, with_status: bool
) -> None:
    """An update (merge or JSON patch, PUT): the writer takes every field it changed; fields it
    removed are nobody's any more."""
    entries = owners(old)
    before, after = fields(old, schema, with_status), fields(new, schema, with_status)
    changed = {path for path in after if path not in before or get(old, path) != get(new, path)}
    for key in entries:
        entries[key] = (entries[key] - changed) & after
    mine = (manager, "Update")
    entries[mine] = entries.get(mine, set()) | changed
    _store(new, entries, old)


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    manager: str,
    force: bool,
    schema: Schema,
    with_status: bool,
) -> dict[str, Any]:
    """The object after `manager` applies `applied` to `live` (None: it does not exist yet).
    Raises Conflict when another manager owns a field set to a different value, without force."""
    applied = copy.deepcopy(applied)
    applied.setdefault("metadata", {}).pop("managedFields", None)
    if with_status:
        applied.pop("status", None)
    entries = owners(live)
    mine: Manager = (manager, "Apply")
    wanted = fields(applied, schema, with_status)
    previous = entries.pop(mine, set())
    base = copy.deepcopy(live) if live is not None else {}
    conflicts = [
        (other[0], path)
        for other, paths in entries.items()
        for path in sorted(wanted & paths)
        if path[-1] != "." and get(base, path) != get(applied, path)
    ]
    if conflicts and not force:
        raise Conflict(conflicts)
    taken = {path for _, path in conflicts}
    for key in entries:
        entries[key] -= taken
    shared = set().union(*entries.values()) if entries else set()
    # Whole list items first: their fields go with them (and, once a key field is gone, an
    # item could no longer be found by its key).
    for path in sorted(previous - wanted, key=lambda p: (p[-1] != ".", len(p), p)):
        item = path[:-1] if path[-1] == "." else None
        kept = path in shared or (item is not None and any(p[: len(item)] == item for p in shared))
        if not kept and get(base, path) is not MISSING:
            remove(base, path)
    result = _merge(base, applied, schema)
    entries[mine] = wanted
    _store(result, entries, live)
    return result


def _merge(live: Any, applied: Any, schema: Schema) -> Any:
    if isinstance(applied, dict) and isinstance(live, dict) and applied:
        merged = dict(live)
        for key, value in applied.items():
            merged[key] = _merge(live.get(key, MISSING), value, schema.field(key))
        return merged
    if isinstance(applied, list) and isinstance(live, list) and schema.list_type in {"map", "set"}:
        merged_list = list(live)
        items = schema.items()
        for item in applied:
            index = _find(merged_list, item_key(item, schema))
            if index is None:
                merged_list.append(copy.deepcopy(item))
            else:
                merged_list[index] = _merge(merged_list[index], item, items)
        return merged_list
    return copy.deepcopy(applied)
