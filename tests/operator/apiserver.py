"""A Kubernetes API server for the operator tests: kmock 0.8's `KubernetesEmulator`, given what
a real API server does and kmock does not, so that kopf can run against it as against a cluster.

Measured on kmock 0.8 as shipped: no `uid`, `resourceVersion`, `generation` or
`creationTimestamp` (kopf's finalizer JSON-patch tests the resourceVersion and loops forever;
owner references get `uid: null`); an object whose body lacks the URL's namespace is lost;
events can be lost between a watch's snapshot and its subscription; no PUT; label selectors and
`timeoutSeconds` ignored; nothing validated. This subclass keeps kmock's HTTP server, request
parsing, discovery (declared resources), error rendering and object store (`objects`, with the
history of every version, which tests use to assert on what was written), and serves the
object verbs itself:

- metadata: `uid`, a monotonic `resourceVersion` (one counter for the server), `generation`
  (bumped when anything but metadata and status changes), `creationTimestamp`; the URL's
  namespace; `generateName`;
- writes: create (409 if it exists), merge patch, strategic merge patch (as a merge patch: our
  objects have no list the difference matters for), JSON patch (422 when a `test` fails), PUT;
  409 on a stale `metadata.resourceVersion`; a write that changes nothing changes nothing;
- the status subresource: the object's endpoint ignores `status`, `/status` changes only it;
- deletion: with finalizers, `deletionTimestamp` first, then gone once the last is removed;
- list and watch: label and field selectors; a watch from a `resourceVersion` replays what
  happened after it, and without one starts with the current objects; snapshot and subscription
  are taken under one lock, so nothing falls between them; `timeoutSeconds` ends the stream;
- validation, answered with 422 like a real server: built-in kinds against the official schemas
  (`kubernetes-validate`'s strict schemas, compiled once per kind: unknown fields refused),
  custom resources against their CRD (defaulting, OpenAPI schema, CEL rules:
  `crd_schema.CrdSchema`). A declared kind with no schema (a third-party CRD's) is stored as
  it is; an undeclared kind is 404, as on a cluster without its CRD;
- server-side apply and field ownership (`managedFields`): `serverside_apply.py`;
- owner-reference garbage collection, background, foreground and orphan, run at once:
  `garbage.py`;
- `fail()`: the next requests matching a method and path answered with an error, for tests of
  what a client does when the server fails.
- strict where a real server is, each in its own module with a hook here: RBAC for requests
  with a bearer token (`authorization.py`: 403, blockOwnerDeletion needs the owner's
  finalizers), fields that cannot change once set (`immutability.py`: 422; a Service's
  clusterIP allocated on create), a bounded watch history with 410 Expired and bookmarks
  (`watchcache.py`), transition rules with `oldSelf` (`crd_schema.py`).

What only a cluster does (controllers, scheduling, admission webhooks) is not emulated: a test
plays the Deployment controller by writing `status` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import functools
import json
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import jsonschema
import kmock
import kubernetes_validate.utils as kv_utils
import yaml
from kmock._internal import references, rendering
from referencing import Registry, Resource

from components import crd
from tests.operator import garbage, immutability, serverside_apply
from tests.operator.authorization import Authorizer
from tests.operator.crd_schema import CrdSchema
from tests.operator.watchcache import BOOKMARK_BEFORE_TIMEOUT_S, WatchWindow
from trading_operator import deploy

K8S_VERSION = "1.31"
NAMESPACES = re.compile(r"/api/v1/namespaces(?:/(?P<name>[^/]+))?(?:/(?P<sub>status))?/?")
VERBS = {"get", "list", "watch", "create", "update", "patch", "delete"}
Key = tuple[Any, str | None, str]


@dataclass
class _Watch:
    resource: Any
    namespace: str | None
    labels: dict[str, str]
    fields: dict[str, str]
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)

    def sees(self, obj: dict[str, Any]) -> bool:
        meta = obj.get("metadata", {})
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        found = meta.get("labels") or {}
        if any(found.get(key) != value for key, value in self.labels.items()):
            return False
        return all(_field(obj, path) == value for path, value in self.fields.items())


@dataclass
class _Failure:
    method: str
    path: re.Pattern[str]
    left: int
    status: int
    times: list[float] = field(default_factory=list)


@attrs.define(kw_only=True)
class ApiServer(kmock.KubernetesEmulator):
    """`async with ApiServer() as api, kmock.Server(api) as server:`; then `declare(...)`.
    With `authorizer`, requests with a bearer token are authorized by RBAC
    (`authorization.Authorizer`); without, every request is the administrator's."""

    authorizer: Authorizer | None = attrs.field(default=None)
    watch_window: WatchWindow = attrs.field(factory=WatchWindow)
    _resource_version: int = attrs.field(default=0, init=False)
    _events: list[tuple[int, Any, dict[str, Any]]] = attrs.field(factory=list, init=False)
    _watches: list[_Watch] = attrs.field(factory=list, init=False)
    _kinds: dict[Any, str] = attrs.field(factory=dict, init=False)
    _crds: dict[Any, CrdSchema] = attrs.field(factory=dict, init=False)
    _with_status: set[Any] = attrs.field(factory=set, init=False)
    _stopping: bool = attrs.field(default=False, init=False)
    _failures: list[_Failure] = attrs.field(factory=list, init=False)

    # --- resources ----------------------------------------------------------------------------

    def declare(
        self,
        api_version: str,
        plural: str,
        kind: str,
        *,
        namespaced: bool = True,
        status: bool = False,
        short_names: tuple[str, ...] = (),
        categories: tuple[str, ...] = (),
        crd: dict[str, Any] | None = None,
    ) -> None:
        resource = references.resource(api_version, plural)
        self.resources[resource] = kmock.ResourceInfo(
            kind=kind,
            singular=kind.lower(),
            namespaced=namespaced,
            verbs=VERBS,
            shortnames=set(short_names),
            categories=set(categories),
            subresources={"status"} if status else set(),
        )
        self._kinds[resource] = kind
        if status:
            self._with_status.add(resource)
        if crd is not None:
            self._crds[resource] = CrdSchema(crd)

    def object(self, api_version: str, plural: str, namespace: str | None, name: str) -> Any:
        """The stored object (a dict), or None."""
        key = (references.resource(api_version, plural), namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        return copy.deepcopy(self._objects[key].raw)

    def versions(self, api_version: str, plural: str, namespace: str, name: str) -> list[Any]:
        """Every version the object had, in order (None where it was deleted)."""
        key = (references.resource(api_version, plural), namespace, name)
        if key not in self._objects:
            return []
        return [None if v is None else copy.deepcopy(v.raw) for v in self._objects[key].history]

    def journal(self) -> list[tuple[str, str, str, Any]]:
        """Every change in order: (event type, kind, name, the object as written)."""
        return [
            (
                event["type"],
                self._kinds[resource],
                event["object"]["metadata"]["name"],
                event["object"],
            )
            for _, resource, event in self._events
        ]

    async def write(
        self,
        api_version: str,
        plural: str,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        subresource: str = "",
        manager: str = "tester",
    ) -> dict[str, Any]:
        """Merge-patch an object as a controller or a person would (no validation bypassed);
        `subresource="status"` for what a controller reports."""
        resource = references.resource(api_version, plural)
        async with self._lock:
            return self._update(
                resource, namespace, name, None, patch, "merge", subresource, manager
            )

    async def serve_operator_resources(self, namespace: str) -> None:
        """What the operator reads and writes, as a cluster with the CRD installed serves it;
        and `namespace`, where the systems live."""
        self.declare(
            f"{crd.GROUP}/{crd.VERSION}",
            crd.PLURAL,
            "TradingSystem",
            status=True,
            short_names=tuple(crd.SHORT_NAMES),
            categories=tuple(crd.CATEGORIES),
            crd=crd.definition(),
        )
        self.declare("v1", "namespaces", "Namespace", namespaced=False, status=True)
        self.declare("v1", "configmaps", "ConfigMap")
        self.declare("v1", "services", "Service", status=True)
        self.declare("v1", "serviceaccounts", "ServiceAccount")
        self.declare("v1", "persistentvolumeclaims", "PersistentVolumeClaim", status=True)
        self.declare("v1", "pods", "Pod", status=True)
        self.declare("v1", "events", "Event")
        self.declare("apps/v1", "deployments", "Deployment", status=True)
        self.declare("networking.k8s.io/v1", "networkpolicies", "NetworkPolicy")
        self.declare("rbac.authorization.k8s.io/v1", "roles", "Role")
        self.declare("rbac.authorization.k8s.io/v1", "rolebindings", "RoleBinding")
        # kopf's peering, as the chart installs it (its CRDs, and the objects kopf never creates).
        for peering in deploy.peering_crds():
            names = peering["spec"]["names"]
            self.declare(
                "kopf.dev/v1",
                names["plural"],
                names["kind"],
                namespaced=peering["spec"]["scope"] == "Namespaced",
                crd=peering,
            )
        await self.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for peering in [*deploy.peerings(), *deploy.peerings([namespace])]:
            await self.add(peering)

    def write_kubeconfig(self, path: Path, namespace: str, token: str | None = None) -> Path:
        """A kubeconfig whose current context is this server, as kubectl and kopf read it;
        with `token`, the user is whom the authorizer knows by it."""
        url = str(self.servers[0].url).rstrip("/")
        context = {"cluster": "emulated", "user": "tester", "namespace": namespace}
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulated", "cluster": {"server": url}}],
            "users": [{"name": "tester", "user": {"token": token} if token else {}}],
            "contexts": [{"name": "emulated", "context": context}],
            "current-context": "emulated",
        }
        path.write_text(yaml.safe_dump(document))
        return path

    def stop_watches(self) -> None:
        """End every watch stream (before the HTTP server stops: it waits for open streams)."""
        self._stopping = True

    async def add(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Create an object as an administrator would (validated like any other)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        resource = next(
            r for r, k in self._kinds.items() if k == kind and _api_version(r) == api_version
        )
        async with self._lock:
            return self._create(resource, obj["metadata"].get("namespace"), obj, "admin")

    # --- serving ------------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock parses `/api/v1/namespaces[/NAME]` as a namespace prefix with no resource (and
        # fails with 500 on the bare collection): serve the Namespace resource itself.
        match = NAMESPACES.fullmatch(raw_request.path)
        if match is None:
            return await super().__call__(raw_request)
        body = await raw_request.read()
        watching = raw_request.query.get("watch") in {"true", "1"}
        request = rendering.Request(
            method=raw_request.method,
            url=raw_request.url,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            data=json.loads(body) if body else None,
            action=kmock.action.WATCH if watching else None,
            resource=references.resource("v1", "namespaces"),
            namespace=None,
            name=match.group("name"),
            subresource=match.group("sub"),
            raw_request=raw_request,
        )
        self._requests.append(request)
        return await self._handle(request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        resource = request.resource
        if resource is None or resource.plural is None:
            return await super()._handle(request)  # discovery
        if self.authorizer is not None:  # before anything else, as a real server
            try:
                self.authorizer.review(self, request)
            except kmock.KubernetesError as exc:
                return await self._render_error(exc)
        if resource not in self._kinds:
            # kmock would store it; a cluster without that kind (no CRD) answers 404.
            missing = _error(404, "NotFound", "the server could not find the requested resource")
            return await self._render_error(missing)
        try:
            if request.action == kmock.action.WATCH:
                return await self._watch(request)
            self._inject_failure(request)
            async with self._lock:
                body = self._serve(request)
            return aiohttp.web.json_response(body, status=201 if request.method == "POST" else 200)
        except kmock.KubernetesError as exc:
            return await self._render_error(exc)

    def _serve(self, request: rendering.Request) -> dict[str, Any]:
        resource, namespace, name = request.resource, request.namespace, request.name
        sub = request.subresource or ""
        method = str(request.method.value)
        if sub not in {"", "status"}:
            raise _error(404, "NotFound", f"no subresource {sub!r}")
        if method == "GET" and name is None:
            return self._list(request)
        if method == "GET":
            return copy.deepcopy(self._get(resource, namespace, name).raw)
        manager = _field_manager(request)
        if method == "POST" and name is None:
            return self._create(resource, namespace, request.data, manager)
        if method == "PATCH" and name is not None:
            headers = {key.lower(): value for key, value in request.headers.items()}
            kind = _patch_kind(headers.get("content-type", ""))
            if kind == "apply":
                return self._apply(request, manager)
            return self._update(resource, namespace, name, None, request.data, kind, sub, manager)
        if method == "PUT" and name is not None:
            return self._update(resource, namespace, name, request.data, None, "", sub, manager)
        if method == "DELETE" and name is not None:
            options = request.data if isinstance(request.data, dict) else {}
            policy = request.params.get("propagationPolicy") or options.get("propagationPolicy")
            return self._delete(resource, namespace, name, policy or "Background")
        raise _error(405, "MethodNotAllowed", f"{method} is not supported here")

    def _get(self, resource: Any, namespace: str | None, name: str) -> Any:
        key = (resource, namespace, name)
        if key not in self._objects or self._objects[key].deleted:
            kind = self._kinds[resource]
            raise _error(404, "NotFound", f'{resource.plural} "{name}" not found', kind=kind)
        return self._objects[key]

    def _list(self, request: rendering.Request) -> dict[str, Any]:
        watch = _selectors(request)
        items = [
            copy.deepcopy(obj.raw)
            for (resource, _, _), obj in self._objects.items()
            if resource == request.resource and not obj.deleted and watch.sees(obj.raw)
        ]
        return {
            "apiVersion": _api_version(request.resource),
            "kind": f"{self._kinds[request.resource]}List",
            "metadata": {"resourceVersion": str(self._resource_version)},
            "items": items,
        }

    def _create(
        self, resource: Any, namespace: str | None, data: Any, manager: str | None
    ) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise _error(400, "BadRequest", "the body must be a JSON object")
        obj = copy.deepcopy(data)
        meta = obj.setdefault("metadata", {})
        if namespace is not None:
            if meta.get("namespace", namespace) != namespace:
                raise _error(400, "BadRequest", "the namespace of the body differs from the URL's")
            meta["namespace"] = namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + secrets.token_hex(3)
        name = meta.get("name")
        if not name:
            raise _error(422, "Invalid", "metadata.name: Required value")
        key = (resource, namespace, name)
        if key in self._objects and not self._objects[key].deleted:
            kind = self._kinds[resource]
            raise _error(409, "AlreadyExists", f'{resource.plural} "{name}" already exists', kind)
        if resource in self._with_status:
            obj.pop("status", None)  # set through /status only
        for server_set in ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp"):
            meta.pop(server_set, None)
        meta.update(
            uid=str(uuid.uuid4()),
            generation=1,
            creationTimestamp=_now(),
        )
        obj.setdefault("apiVersion", _api_version(resource))
        obj.setdefault("kind", self._kinds[resource])
        if manager is not None:  # None: an apply, which recorded its own fields
            serverside_apply.record_create(
                obj, manager, self._schema(resource), resource in self._with_status
            )
        immutability.allocate(self._kinds[resource], obj)
        obj = self._admit(resource, obj)
        meta = obj["metadata"]
        meta["resourceVersion"] = self._next_version()
        if key in self._objects:
            self._objects[key].create(obj)
        else:
            self._objects[key] = obj
        self._publish(resource, "ADDED", obj)
        return copy.deepcopy(obj)

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
    ) -> dict[str, Any]:
        stored = self._get(resource, namespace, name)
        old = copy.deepcopy(stored.raw)
        if replacement is not None:
            new = copy.deepcopy(replacement)
        elif patch_kind == "json":
            new = _json_patch(old, patch)
        else:
            if not isinstance(patch, dict):
                raise _error(400, "BadRequest", "a merge patch must be a JSON object")
            new = _merge_patch(copy.deepcopy(old), patch)
        if not isinstance(new, dict):
            raise _error(422, "Invalid", "the object must stay a JSON object")
        meta = new.setdefault("metadata", {})
        wanted = meta.get("resourceVersion")
        if wanted is not None and wanted != old["metadata"]["resourceVersion"]:
            raise _error(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {resource.plural} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                self._kinds[resource],
            )
        # What the client may not change: identity and server-set metadata.
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if fixed in old["metadata"]:
                meta[fixed] = old["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        if resource in self._with_status:
            if sub == "status":
                new = {**old, "status": new.get("status")}
                if new["status"] is None:
                    new.pop("status")
            elif "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        meta = new["metadata"]
        if sub == "status":  # status fields are not tracked: see serverside_apply
            meta["managedFields"] = old["metadata"].get("managedFields", [])
        elif manager is not None:  # None: an apply, which recorded its own fields
            serverside_apply.record_update(
                old, new, manager, self._schema(resource), resource in self._with_status
            )
        meta["resourceVersion"] = old["metadata"]["resourceVersion"]
        meta["generation"] = old["metadata"].get("generation", 1)
        if _content(new) != _content(old):
            meta["generation"] += 1
        if new == old:
            return old  # nothing changed: no new version, no event
        if sub != "status":
            immutability.check(self._kinds[resource], old, new)
        new = self._admit(resource, new, old)
        new["metadata"]["resourceVersion"] = self._next_version()
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            stored.create(new)
            stored.delete()
            self._publish(resource, "DELETED", new)
            garbage.removed(self, new)
            return new
        stored.create(new)
        self._publish(resource, "MODIFIED", new)
        return copy.deepcopy(new)

    def _apply(self, request: rendering.Request, manager: str) -> dict[str, Any]:
        """Server-side apply (`serverside_apply`): creates the object when it is missing."""
        resource, namespace, name = request.resource, request.namespace, request.name
        if request.subresource:
            raise _error(400, "BadRequest", "apply to a subresource is not supported here")
        if not request.params.get("fieldManager"):
            raise _error(400, "BadRequest", "fieldManager is required for apply requests")
        try:
            data = yaml.safe_load(request.body or b"")
        except yaml.YAMLError as exc:
            raise _error(400, "BadRequest", f"the apply body is not YAML: {exc}") from exc
        if not isinstance(data, dict) or (data.get("metadata") or {}).get("name") != name:
            raise _error(400, "BadRequest", "the applied object must name the object of the URL")
        key = (resource, namespace, name)
        exists = key in self._objects and not self._objects[key].deleted
        live = copy.deepcopy(self._objects[key].raw) if exists else None
        force = request.params.get("force") in {"true", "1"}
        try:
            new = serverside_apply.apply(
                live, data, manager, force, self._schema(resource), resource in self._with_status
            )
        except serverside_apply.Conflict as exc:
            raise _error(409, "Conflict", str(exc), self._kinds[resource]) from exc
        if live is None:
            return self._create(resource, namespace, new, None)
        return self._update(resource, namespace, name, new, None, "", "", None)

    def _schema(self, resource: Any) -> serverside_apply.Schema:
        crd_schema = None
        if resource in self._crds:
            crd_schema = self._crds[resource].openapi
        return serverside_apply.schema_of(_api_version(resource), self._kinds[resource], crd_schema)

    def fail(self, method: str, path: str, times: int, status: int = 500) -> list[float]:
        """Answer the next `times` requests `method path` (a regular expression, matched in
        full) with `status`, as an overloaded or failing server would; returns the list the
        monotonic time of each failed request is appended to."""
        failure = _Failure(method, re.compile(path), times, status)
        self._failures.append(failure)
        return failure.times

    def _inject_failure(self, request: rendering.Request) -> None:
        for failure in self._failures:
            method = str(request.method.value)
            if (
                failure.left > 0
                and failure.method == method
                and failure.path.fullmatch(request.url.path)
            ):
                failure.left -= 1
                failure.times.append(time.monotonic())
                raise _error(failure.status, "InternalError", "injected by the test")

    def _delete(
        self, resource: Any, namespace: str | None, name: str, policy: str = "Background"
    ) -> dict[str, Any]:
        stored = self._get(resource, namespace, name)
        obj = copy.deepcopy(stored.raw)
        meta = obj["metadata"]
        if policy not in garbage.POLICIES:
            raise _error(400, "BadRequest", f"unknown propagationPolicy {policy!r}")
        if policy == "Orphan":
            garbage.delete_dependents(self, obj, "Orphan")
        elif policy == "Foreground" and garbage.dependents(self, meta["uid"]):
            meta["finalizers"] = [*(meta.get("finalizers") or []), garbage.FOREGROUND]
        if meta.get("finalizers"):
            if not meta.get("deletionTimestamp"):
                meta["deletionTimestamp"] = _now()
                meta["deletionGracePeriodSeconds"] = 0
                meta["resourceVersion"] = self._next_version()
                stored.create(obj)
                self._publish(resource, "MODIFIED", obj)
            if garbage.FOREGROUND in meta["finalizers"]:
                garbage.delete_dependents(self, obj, "Foreground")
                garbage.release_waiting_owners(self, {"metadata": {"ownerReferences": [meta]}})
                current = self._objects[(resource, namespace, name)]
                return obj if current.deleted else copy.deepcopy(current.raw)
            return obj
        meta["resourceVersion"] = self._next_version()
        stored.delete()
        self._publish(resource, "DELETED", obj)
        garbage.removed(self, obj)
        return obj

    async def _watch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        watch = _selectors(request)
        since = request.params.get("resourceVersion") or ""
        timeout_s = float(request.params.get("timeoutSeconds") or 0) or None
        bookmarks = request.params.get("allowWatchBookmarks") in {"true", "1"}
        async with self._lock:  # the snapshot and the subscription at one instant
            gone = self.watch_window.gone(request.resource, since)
            if gone is not None:
                backlog = [gone]  # too old: one ERROR event, then the stream ends
            elif since not in {"", "0"}:
                backlog = [
                    event
                    for version, resource, event in self._events
                    if resource == request.resource and version > int(since)
                ]
            else:
                backlog = [
                    {"type": "ADDED", "object": copy.deepcopy(obj.raw)}
                    for (resource, _, _), obj in self._objects.items()
                    if resource == request.resource and not obj.deleted
                ]
            if gone is None:
                self._watches.append(watch)
        assert request._raw_request is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request._raw_request)
        deadline = None if timeout_s is None else asyncio.get_running_loop().time() + timeout_s
        marks = _Bookmarks(self, request, deadline) if bookmarks and gone is None else None
        try:
            for event in backlog:
                if event["type"] == "ERROR" or watch.sees(event["object"]):
                    await response.write(json.dumps(event).encode() + b"\n")
            while gone is None:
                left = None if deadline is None else deadline - asyncio.get_running_loop().time()
                if marks is not None and (mark := marks.due()) is not None:
                    await response.write(json.dumps(mark).encode() + b"\n")
                if left is not None and left <= 0:
                    break
                transport = request._raw_request.transport
                if self._stopping or transport is None or transport.is_closing():
                    break  # the client went away: end the stream, as a server does
                try:
                    event = await asyncio.wait_for(watch.queue.get(), min(left or 0.1, 0.1))
                except TimeoutError:
                    continue
                if watch.sees(event["object"]):
                    await response.write(json.dumps(event).encode() + b"\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with contextlib.suppress(ValueError):
                self._watches.remove(watch)
        return response

    # --- what a real server does on every write -------------------------------------------

    def _admit(
        self, resource: Any, obj: dict[str, Any], old: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        obj.setdefault("apiVersion", _api_version(resource))
        obj.setdefault("kind", self._kinds[resource])
        if resource in self._crds:
            stored, problems = self._crds[resource].admit(obj, old)
            if problems:
                name = obj["metadata"].get("name")
                raise _error(
                    422,
                    "Invalid",
                    f'{self._kinds[resource]}.{resource.group} "{name}" is invalid: '
                    + "; ".join(problems),
                    self._kinds[resource],
                )
            return stored
        validator = _official_schema(obj["apiVersion"], obj["kind"])
        error = (
            None
            if validator is None
            else jsonschema.exceptions.best_match(validator.iter_errors(obj))
        )
        if error is not None:
            exc = error
            where = ".".join(str(part) for part in exc.absolute_path) or "(root)"
            name = obj["metadata"].get("name")
            raise _error(
                422,
                "Invalid",
                f'{self._kinds[resource]} "{name}" is invalid: {where}: {exc.message}',
                self._kinds[resource],
            )
        return obj

    def _next_version(self) -> str:
        self._resource_version += 1
        return str(self._resource_version)

    def _publish(self, resource: Any, kind: str, obj: dict[str, Any]) -> None:
        event = {"type": kind, "object": copy.deepcopy(obj)}
        self._events.append((int(obj["metadata"]["resourceVersion"]), resource, event))
        self.watch_window.record(resource, int(obj["metadata"]["resourceVersion"]))
        for watch in self._watches:
            if watch.resource == resource:
                watch.queue.put_nowait(event)


class _Bookmarks:
    """When a watch that allows bookmarks gets its next one: every interval, and once just
    before its timeout ends it."""

    def __init__(self, server: ApiServer, request: rendering.Request, deadline: float | None):
        self.server, self.resource = server, request.resource
        self.loop = asyncio.get_running_loop()
        self.next = self.loop.time() + server.watch_window.bookmark_interval_s
        self.last_call = None if deadline is None else deadline - BOOKMARK_BEFORE_TIMEOUT_S

    def due(self) -> dict[str, Any] | None:
        now = self.loop.time()
        final = self.last_call is not None and now >= self.last_call
        if now < self.next and not final:
            return None
        self.next = now + self.server.watch_window.bookmark_interval_s
        if final:
            self.last_call = None
        window = self.server.watch_window
        kind = self.server._kinds[self.resource]
        return window.bookmark(_api_version(self.resource), kind, self.server._resource_version)


@functools.cache
def _official_schema(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    """kubernetes-validate's strict schema of a kind, compiled once (its `validate` reads and
    compiles the schema files on every call: half a second for one system's children)."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    folder = f"kubernetes-json-schema/v{K8S_VERSION}.0-local-strict"
    try:
        schema = kv_utils.schema_contents(
            f"{folder}/{kind.lower()}-{group_version}.json", K8S_VERSION
        )
    except FileNotFoundError:
        return None  # a kind without an official schema (a third-party CRD): stored as it is
    definitions = kv_utils.schema_contents(f"{folder}/_definitions.json", K8S_VERSION)
    registry = Resource.from_contents(schema) @ (Resource.from_contents(definitions) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _selectors(request: rendering.Request) -> _Watch:
    return _Watch(
        resource=request.resource,
        namespace=request.namespace,
        labels=_pairs(request.params.get("labelSelector", "")),
        fields=_pairs(request.params.get("fieldSelector", "")),
    )


def _pairs(selector: str) -> dict[str, str]:
    """Equality selectors (`a=b,c==d`), the only kind the operator and kopf send."""
    pairs = {}
    for term in filter(None, selector.split(",")):
        key, _, value = term.replace("==", "=").partition("=")
        if not _:
            raise _error(400, "BadRequest", f"unsupported selector term {term!r}")
        pairs[key.strip()] = value.strip()
    return pairs


def _field(obj: dict[str, Any], path: str) -> Any:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _content(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in {"metadata", "status"}}


def _field_manager(request: rendering.Request) -> str:
    """The request's field manager: `fieldManager`, else the User-Agent's product, as a real
    server derives it."""
    headers = {key.lower(): value for key, value in request.headers.items()}
    given = request.params.get("fieldManager")
    return str(given or headers.get("user-agent", "unknown").split("/")[0] or "unknown")


def _patch_kind(content_type: str) -> str:
    kind = content_type.split(";")[0].strip()
    if kind == "application/apply-patch+yaml":
        return "apply"
    if kind == "application/json-patch+json":
        return "json"
    if kind in {"application/merge-patch+json", "application/strategic-merge-patch+json"}:
        return "merge"
    raise _error(415, "UnsupportedMediaType", f"unsupported patch type {kind!r}")


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if not isinstance(target, dict):
        target = {}
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = _merge_patch(target.get(key), value)
    return target


def _json_patch(document: Any, operations: Any) -> Any:
    """RFC 6902: add, remove, replace, test (what kopf and the operator send)."""
    if not isinstance(operations, list):
        raise _error(400, "BadRequest", "a JSON patch must be a list of operations")
    document = copy.deepcopy(document)
    for operation in operations:
        op, pointer = operation.get("op"), operation.get("path", "")
        *parents, last = [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]
        parent = document
        for part in parents:
            parent = parent[int(part)] if isinstance(parent, list) else parent.get(part)
            if parent is None:
                raise _error(422, "Invalid", f"JSON patch: path {pointer} does not exist")
        if op == "test":
            value = _at(parent, last)
            if value != operation.get("value"):
                raise _error(
                    422,
                    "Invalid",
                    f"the test operation failed: {pointer} is {value!r}, "
                    f"not {operation.get('value')!r}",
                )
        elif op == "add":
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                parent.insert(index, operation["value"])
            else:
                parent[last] = operation["value"]
        elif op in {"remove", "replace"}:
            if _at(parent, last, missing=KeyError) is KeyError:
                raise _error(422, "Invalid", f"JSON patch: {pointer} does not exist")
            if op == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            else:
                parent[int(last) if isinstance(parent, list) else last] = operation["value"]
        else:
            raise _error(422, "Invalid", f"JSON patch: unsupported operation {op!r}")
    return document


def _at(parent: Any, key: str, missing: Any = None) -> Any:
    if isinstance(parent, list):
        return parent[int(key)] if key.isdigit() and int(key) < len(parent) else missing
    return parent.get(key, missing) if isinstance(parent, dict) else missing


def _api_version(resource: Any) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else resource.version


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _error(
    status: int, reason: str, message: str, kind: str | None = None
) -> kmock.KubernetesError:
    return kmock.KubernetesError(
        status=status, reason=reason, message=message, details={"kind": kind} if kind else {}
    )
