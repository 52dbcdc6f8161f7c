"""Fields a real API server refuses to change once an object exists (422), which kmock stores
as written; and the one such field it sets itself (a Service's clusterIP), so that the operator
meets them here as on a cluster:

- Deployment: `spec.selector`;
- PersistentVolumeClaim: the whole spec but `resources.requests` (which may only grow) and
  `volumeAttributesClassName`; `storageClassName` and `volumeName` may be set where unset (the
  default class assigned late, the claim bound), never changed. (A real server also refuses a
  resize of a claim that is not bound; nothing binds claims here, so that is not emulated.)
- Service: `spec.clusterIP` and `spec.clusterIPs` once allocated (allocated on create, from
  10.96.0.0/12, unless `None` or an ExternalName Service);
- ConfigMap and Secret with `immutable: true`: `data`, `binaryData`, `immutable`.

Messages are the real validators' (k8s.io/kubernetes pkg/apis/*/validation).
"""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import kmock

from tests.operator.cel_library import Quantity

_ADDRESSES = itertools.count(10)


def allocate(kind: str, obj: dict[str, Any]) -> None:
    """What the server sets on create: a Service's cluster IP."""
    spec = obj.get("spec")
    if kind != "Service" or not isinstance(spec, dict) or spec.get("type") == "ExternalName":
        return
    if not spec.get("clusterIP"):
        number = next(_ADDRESSES)
        spec["clusterIP"] = f"10.96.{number // 250}.{number % 250 + 1}"
    spec.setdefault("clusterIPs", [spec["clusterIP"]])


def check(kind: str, old: dict[str, Any], new: dict[str, Any]) -> None:
    """Raise the 422 a real server answers when `new` changes what `old` fixed."""
    name = new.get("metadata", {}).get("name")
    problems = {
        "Deployment": _deployment,
        "PersistentVolumeClaim": _claim,
        "Service": _service,
        "ConfigMap": _immutable_data,
        "Secret": _immutable_data,
    }.get(kind, lambda old, new: [])(old, new)
    if problems:
        group = ".apps" if kind == "Deployment" else ""
        raise kmock.KubernetesError(
            status=422,
            reason="Invalid",
            message=f'{kind}{group} "{name}" is invalid: ' + ", ".join(problems),
            details={"name": name, "kind": kind},
        )


def _deployment(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    before, after = _at(old, "spec", "selector"), _at(new, "spec", "selector")
    if before != after:
        return [f"spec.selector: Invalid value: {json.dumps(after)}: field is immutable"]
    return []


def _claim(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    before, after = (
        _at(old, "spec", "resources", "requests", "storage"),
        _at(new, "spec", "resources", "requests", "storage"),
    )
    if before and after and Quantity(str(after)).compare(Quantity(str(before))) < 0:
        problems.append(
            "spec.resources.requests.storage: Forbidden: field can not be less than previous value"
        )
    fixed_before, fixed_after = _claim_fixed(old), _claim_fixed(new)
    for late in ("storageClassName", "volumeName"):  # may be set once, where unset
        if not fixed_before.get(late):
            fixed_before.pop(late, None)
            fixed_after.pop(late, None)
    if fixed_before != fixed_after:
        problems.append(
            "spec: Forbidden: spec is immutable after creation except resources.requests and "
            "volumeAttributesClassName for bound claims"
        )
    return problems


def _claim_fixed(obj: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(obj.get("spec") or {})
    spec.pop("volumeAttributesClassName", None)
    resources = spec.get("resources") or {}
    resources.pop("requests", None)
    if not resources:
        spec.pop("resources", None)
    return dict(spec)


def _service(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    problems = []
    before = _at(old, "spec", "clusterIP")
    if before and _at(new, "spec", "clusterIP") != before:
        value = json.dumps(_at(new, "spec", "clusterIP") or "")
        problems.append(f"spec.clusterIP: Invalid value: {value}: field is immutable")
    ips = _at(old, "spec", "clusterIPs")
    if ips and _at(new, "spec", "clusterIPs") not in (None, ips):
        problems.append(
            f"spec.clusterIPs[0]: Invalid value: {json.dumps(ips)}: may not change once set"
        )
    return problems


def _immutable_data(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    if not old.get("immutable"):
        return []
    return [
        f"{field}: Forbidden: field is immutable when `immutable` is set"
        for field in ("data", "binaryData", "immutable")
        if old.get(field) != new.get(field)
    ]


def _at(obj: Any, *path: str) -> Any:
    for part in path:
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj
