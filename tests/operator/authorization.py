"""RBAC as a real API server applies it, for the emulated one: a request with a bearer token is
made by that token's ServiceAccount, mapped to the authorizer's attributes (verb, API group,
resource, subresource, namespace, name) and allowed only if a Role or ClusterRole bound to the
account grants it; else 403 with the Status a real server sends. A request without a token is
the test's own administrator (`kubectl` as cluster-admin) and is not checked.

The rules are those the chart renders (`helm template` with the real binary; without it,
`trading_operator.deploy`'s, which tests/chart proves equal), so that a right the operator needs
and the chart lacks fails the operator tests as it would fail on a cluster. Every grant used is
recorded: a test lists the rights a run never used.

Also here, because it is an authorization check: the OwnerReferencesPermissionEnforcement
admission plugin, which refuses (403) an ownerReference with `blockOwnerDeletion: true` unless
its author may `update` the owner's `finalizers` subresource.
"""

from __future__ import annotations

import dataclasses
import functools
import secrets
import shutil
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kmock
import yaml

ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NAMESPACE = "trading-system"  # where the chart's operator account lives
OPERATOR_ACCOUNT = "trading-operator"


@dataclass(frozen=True)
class Right:
    """One verb on one resource (`plural` or `plural/subresource`) of one API group."""

    group: str
    resource: str
    verb: str

    def __str__(self) -> str:
        return f"{self.verb} {self.resource}.{self.group or 'core'}"


@dataclass(frozen=True)
class Attributes:
    """What the authorizer decides on (k8s.io/apiserver's authorizer.Attributes)."""

    user: str
    verb: str
    group: str
    resource: str
    subresource: str
    namespace: str | None
    name: str | None

    @property
    def right(self) -> Right:
        full = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        return Right(self.group, full, self.verb)


@dataclass
class _Grant:
    where: str | None  # the namespace a RoleBinding limits it to; None: everywhere
    rule: dict[str, Any]
    source: str


@dataclass
class Authorizer:
    objects: list[dict[str, Any]]
    tokens: dict[str, str] = field(default_factory=dict)  # token -> user name
    used: set[Right] = field(default_factory=set)
    denied: list[Attributes] = field(default_factory=list)

    def token_for(self, namespace: str, account: str) -> str:
        """A bearer token of a ServiceAccount, as its pod would mount it."""
        user = f"system:serviceaccount:{namespace}:{account}"
        token = secrets.token_urlsafe(16)
        self.tokens[token] = user
        return token

    def user(self, headers: dict[str, str]) -> str | None:
        found = {key.lower(): value for key, value in headers.items()}.get("authorization", "")
        if not found.startswith("Bearer "):
            return None  # the test's administrator
        user = self.tokens.get(found.removeprefix("Bearer ").strip())
        if user is None:
            raise kmock.KubernetesError(
                status=401, reason="Unauthorized", message="Unauthorized", details={}
            )
        return user

    def review(self, server: Any, request: Any) -> None:
        """Authorize one request to `server` (an `apiserver.ApiServer`), then the owner
        references it sets; raise the 401 or 403 a real server answers."""
        user = self.user(dict(request.headers))
        if user is None or request.resource is None or request.resource.plural is None:
            return  # the administrator; or discovery, which every user may read
        method = str(request.method.value)
        found = attributes(
            user, method, dict(request.params), request.resource, request.namespace,
            request.name, request.subresource,
        )  # fmt: skip
        if not self.permits(found):
            raise forbidden(found)
        stored = server.object(
            _api_version(request.resource), request.resource.plural, request.namespace,
            request.name or "",
        ) if request.name else None  # fmt: skip
        content_type = {k.lower(): v for k, v in request.headers.items()}.get("content-type", "")
        if found.verb == "patch" and stored is None and "apply-patch" in content_type:
            # An apply that creates the object needs `create` as well (the API server's patch
            # handler authorizes the creation it turns into).
            creating = dataclasses.replace(found, verb="create")
            if not self.permits(creating):
                raise forbidden(creating)
        old = ((stored or {}).get("metadata") or {}).get("ownerReferences")
        new = owner_references(method, request.data)
        for ref in blocking_owners(new, old):
            owner = _resource_of(server, ref)
            if owner is None:
                raise forbidden(
                    found,
                    "cannot set blockOwnerDeletion in this case because cannot find "
                    f"RESTMapping for APIVersion {ref.get('apiVersion')} Kind {ref.get('kind')}: ",
                )
            finalizers = Attributes(
                user, "update", owner.group or "", owner.plural, "finalizers",
                request.namespace, ref.get("name"),
            )  # fmt: skip
            if not self.permits(finalizers):
                raise forbidden(
                    found,
                    "cannot set blockOwnerDeletion if an ownerReference refers to a resource "
                    f"you can't set finalizers on: {finalizers.right} {ref.get('name')!r}: ",
                )

    def permits(self, attributes: Attributes) -> bool:
        """Whether a role of the user grants it; a granted right is recorded as used."""
        if any(self._matches(grant, attributes) for grant in self._grants(attributes.user)):
            self.used.add(attributes.right)
            return True
        self.denied.append(attributes)
        return False

    def granted(self, user: str) -> set[Right]:
        """Every right the user's roles grant (with a resource name or not)."""
        return {
            Right(group, resource, verb)
            for grant in self._grants(user)
            for group in grant.rule.get("apiGroups", [])
            for resource in grant.rule.get("resources", [])
            for verb in grant.rule.get("verbs", [])
        }

    def _grants(self, user: str) -> Iterable[_Grant]:
        roles = {
            (obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]): obj
            for obj in self.objects
            if obj["kind"] in {"Role", "ClusterRole"}
        }
        for binding in self.objects:
            if binding["kind"] not in {"RoleBinding", "ClusterRoleBinding"}:
                continue
            if not any(_subject(s, binding) == user for s in binding.get("subjects") or []):
                continue
            where = (
                binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
            )
            ref = binding["roleRef"]
            role_namespace = where if ref["kind"] == "Role" else None
            role = roles.get((ref["kind"], role_namespace, ref["name"]))
            for rule in (role or {}).get("rules") or []:
                yield _Grant(where, rule, f"{ref['kind']}/{ref['name']}")

    @staticmethod
    def _matches(grant: _Grant, attributes: Attributes) -> bool:
        if grant.where is not None and attributes.namespace != grant.where:
            return False
        rule = grant.rule
        if not {"*", attributes.group} & set(rule.get("apiGroups", [])):
            return False
        resources = set(rule.get("resources", []))
        full = attributes.right.resource
        sub_any = f"*/{attributes.subresource}" if attributes.subresource else "*"
        if not {full, sub_any, "*"} & resources:
            return False
        if not {"*", attributes.verb} & set(rule.get("verbs", [])):
            return False
        names = rule.get("resourceNames")
        return not names or attributes.name in names


def attributes(
    user: str, method: str, params: dict[str, str], resource: Any, namespace: str | None,
    name: str | None, subresource: str | None,
) -> Attributes:  # fmt: skip
    """Map an HTTP request to the authorizer's attributes, as the API server's RequestInfo."""
    watching = params.get("watch") in {"true", "1"}
    verb = {
        "GET": "watch" if watching else ("get" if name else "list"),
        "POST": "create",
        "PUT": "update",
        "PATCH": "patch",
        "DELETE": "delete" if name else "deletecollection",
    }.get(method, method.lower())
    if resource.plural == "namespaces" and name:
        namespace = name  # a Namespace is authorized in itself
    return Attributes(
        user, verb, resource.group or "", resource.plural, subresource or "", namespace, name
    )


def forbidden(attributes: Attributes, detail: str = "") -> kmock.KubernetesError:
    """The Status a real server answers when RBAC denies."""
    group = attributes.group
    what = attributes.resource + (f".{group}" if group else "")
    subject = f'{what} "{attributes.name}"' if attributes.name else what
    scope = (
        f'in the namespace "{attributes.namespace}"'
        if attributes.namespace
        else "at the cluster scope"
    )
    message = (
        f'{subject} is forbidden: {detail}User "{attributes.user}" cannot {attributes.verb} '
        f'resource "{attributes.right.resource}" in API group "{group}" {scope}'
    )
    return kmock.KubernetesError(
        status=403,
        reason="Forbidden",
        message=message,
        details={"name": attributes.name or "", "group": group, "kind": attributes.resource},
    )


def owner_references(method: str, data: Any) -> list[dict[str, Any]] | None:
    """The ownerReferences a write sets (None: it does not touch them)."""
    if method in {"POST", "PUT"} or (method == "PATCH" and isinstance(data, dict)):
        refs = ((data or {}).get("metadata") or {}).get("ownerReferences")
        return list(refs) if isinstance(refs, list) else None
    if method == "PATCH" and isinstance(data, list):  # a JSON patch
        found: list[dict[str, Any]] = []
        for op in data:
            if str(op.get("path", "")).startswith("/metadata/ownerReferences"):
                value = op.get("value")
                found += value if isinstance(value, list) else [value] if value else []
        return found
    return None


def blocking_owners(
    new: list[dict[str, Any]] | None, old: list[dict[str, Any]] | None
) -> list[dict[str, Any]]:
    """The references that newly block their owner's deletion (what the plugin checks)."""
    before = {ref.get("uid") for ref in old or [] if ref.get("blockOwnerDeletion")}
    return [
        ref
        for ref in new or []
        if isinstance(ref, dict) and ref.get("blockOwnerDeletion") and ref.get("uid") not in before
    ]


def _resource_of(server: Any, ref: dict[str, Any]) -> Any:
    for resource, kind in server._kinds.items():
        if kind == ref.get("kind") and _api_version(resource) == ref.get("apiVersion"):
            return resource
    return None


def _api_version(resource: Any) -> str:
    return f"{resource.group}/{resource.version}" if resource.group else str(resource.version)


def _subject(subject: dict[str, Any], binding: dict[str, Any]) -> str:
    if subject.get("kind") == "ServiceAccount":
        namespace = subject.get("namespace") or binding["metadata"].get("namespace")
        return f"system:serviceaccount:{namespace}:{subject['name']}"
    return str(subject.get("name"))


@functools.cache
def chart_rbac(watch_namespaces: Sequence[str] = ()) -> tuple[dict[str, Any], ...]:
    """The Roles, ClusterRoles and bindings the chart renders for the operator."""
    wanted = {"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
    helm = ROOT / ".tools" / "bin" / "helm"
    binary = str(helm) if helm.is_file() else shutil.which("helm")
    if binary is None:
        from trading_operator import deploy

        objects = deploy.manifests(OPERATOR_NAMESPACE, "image", tuple(watch_namespaces))
        return tuple(obj for obj in objects if obj["kind"] in wanted)
    args = [binary, "template", "rbac", str(ROOT / "charts" / "tradingsystem")]
    args += ["--namespace", OPERATOR_NAMESPACE]
    if watch_namespaces:
        args += ["--set", f"operator.watchNamespaces={{{','.join(watch_namespaces)}}}"]
    rendered = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return tuple(
        doc for doc in yaml.safe_load_all(rendered.stdout) if doc and doc["kind"] in wanted
    )


def for_operator(watch_namespaces: Sequence[str] = ()) -> tuple[Authorizer, str]:
    """An authorizer with the chart's RBAC, and the operator account's token."""
    authorizer = Authorizer([dict(obj) for obj in chart_rbac(tuple(watch_namespaces))])
    return authorizer, authorizer.token_for(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)


OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
