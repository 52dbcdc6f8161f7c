"""A small asyncio client of the Kubernetes REST API, on aiohttp: the operator, the risk
manager's status reporter and `kubectl trading` use it with plain dicts.

Why not the official `kubernetes` package: it is synchronous (a thread per call inside kopf's and
the risk manager's event loops) and turns every object into a generated model class; we only need
get, list, create, merge- and JSON-patch, server-side apply, and delete on known paths.

Writes name their field manager (`fieldManager`) when the client is given one, so that the
server's field ownership (`metadata.managedFields`) says who set what.

Where the API is: in a pod, the service account (`KUBERNETES_SERVICE_HOST`, its token and CA);
elsewhere the current context of `$KUBECONFIG` (default `~/.kube/config`): server, CA, token or
client certificate.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import aiohttp
import yaml

from components.core.errors import KubeApiError, TradingSystemError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}
APPLY_TYPE = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as JSON
WRITES = {"POST", "PUT", "PATCH"}


@dataclass(frozen=True)
class KubeConfig:
    server: str
    namespace: str = "default"
    token: str | None = None
    ca_file: str | None = None
    client_cert: tuple[str, str] | None = None  # (certificate file, key file)
    insecure: bool = False

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> KubeConfig:
        env = os.environ if environ is None else environ
        if env.get("KUBERNETES_SERVICE_HOST") and (SERVICE_ACCOUNT / "token").exists():
            return cls.in_cluster(env)
        path = env.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube/config")
        return cls.from_kubeconfig(Path(path))

    @classmethod
    def in_cluster(cls, env: Mapping[str, str]) -> KubeConfig:
        host, port = env["KUBERNETES_SERVICE_HOST"], env.get("KUBERNETES_SERVICE_PORT", "443")
        host = f"[{host}]" if ":" in host else host
        return cls(
            server=f"https://{host}:{port}",
            namespace=(SERVICE_ACCOUNT / "namespace").read_text().strip(),
            token=(SERVICE_ACCOUNT / "token").read_text().strip(),
            ca_file=str(SERVICE_ACCOUNT / "ca.crt"),
        )

    @classmethod
    def from_kubeconfig(cls, path: Path) -> KubeConfig:
        try:
            document = yaml.safe_load(path.read_text()) or {}
            contexts = {c["name"]: c["context"] for c in document.get("contexts", [])}
            context = contexts[document["current-context"]]
            cluster = {c["name"]: c["cluster"] for c in document["clusters"]}[context["cluster"]]
            users = {u["name"]: u.get("user") or {} for u in document.get("users", [])}
            user = users.get(context.get("user", ""), {})
        except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
            raise TradingSystemError(f"while reading the kubeconfig {path}: {exc!r}") from exc
        cert = _file(user, "client-certificate")
        key = _file(user, "client-key")
        return cls(
            server=cluster["server"].rstrip("/"),
            namespace=context.get("namespace", "default"),
            token=user.get("token"),
            ca_file=_file(cluster, "certificate-authority"),
            client_cert=(cert, key) if cert and key else None,
            insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        )

    def ssl_context(self) -> ssl.SSLContext | bool:
        if not self.server.startswith("https"):
            return False
        context = ssl.create_default_context(cafile=self.ca_file)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.client_cert:
            context.load_cert_chain(*self.client_cert)
        return context


def _file(section: Mapping[str, Any], key: str) -> str | None:
    """A kubeconfig file reference, or its inline `-data` twin written to a private file."""
    if section.get(key):
        return str(section[key])
    data = section.get(f"{key}-data")
    if not data:
        return None
    handle, name = tempfile.mkstemp(prefix="kubeconfig-")
    with os.fdopen(handle, "wb") as out:
        out.write(base64.b64decode(data))
    return name


def path(
    api_version: str,
    plural: str,
    namespace: str | None = None,
    name: str | None = None,
    subresource: str | None = None,
) -> str:
    """The REST path of a collection or an object: `path("apps/v1", "deployments", "ns", "x")`."""
    root = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    parts = [root]
    if namespace is not None:
        parts.append(f"namespaces/{namespace}")
    parts.append(plural)
    if name is not None:
        parts.append(name)
    if subresource is not None:
        parts.append(subresource)
    return "/".join(parts)


class KubeApi:
    """`async with KubeApi(config) as api: await api.get(path(...))`."""

    def __init__(
        self, config: KubeConfig, timeout_s: float = 10.0, field_manager: str | None = None
    ) -> None:
        self.config = config
        self.field_manager = field_manager
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Self:
        headers = {"Accept": "application/json", "User-Agent": "tradingsystem"}
        if self.config.token:
            headers["Authorization"] = f"Bearer {self.config.token}"
        connector = aiohttp.TCPConnector(ssl=self.config.ssl_context())
        self._session = aiohttp.ClientSession(
            self.config.server, headers=headers, timeout=self._timeout, connector=connector
        )
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def get(self, url: str) -> dict[str, Any]:
        return await self._request("GET", url, what=f"reading {url}")

    async def find(self, url: str) -> dict[str, Any] | None:
        """The object, or None when it does not exist."""
        try:
            return await self.get(url)
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    async def list(self, url: str, label_selector: str | None = None) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else None
        listing = await self._request("GET", url, params=params, what=f"listing {url}")
        return list(listing.get("items") or [])

    async def create(self, url: str, body: Mapping[str, Any]) -> dict[str, Any]:
        name = body.get("metadata", {}).get("name")
        return await self._request("POST", url, body=body, what=f"creating {url}/{name}")

    async def patch(
        self, url: str, body: Any, patch: Literal["merge", "json"] = "merge"
    ) -> dict[str, Any]:
        headers = {"Content-Type": PATCH_TYPES[patch]}
        return await self._request("PATCH", url, body=body, headers=headers, what=f"patching {url}")

    async def apply(self, url: str, body: Mapping[str, Any], force: bool = False) -> dict[str, Any]:
        """Server-side apply: the object becomes what `body` says for the fields this client's
        field manager owns (fields it applied before and not now are removed); `force` takes
        over fields another manager set (a hand edit) instead of answering 409 Conflict."""
        if not self.field_manager:
            raise RuntimeError("server-side apply needs a field manager: KubeApi(field_manager=)")
        params = {"force": "true"} if force else None
        headers = {"Content-Type": APPLY_TYPE}
        return await self._request(
            "PATCH", url, body=body, params=params, headers=headers, what=f"applying {url}"
        )

    async def delete(self, url: str) -> bool:
        """Delete; False when it was already gone."""
        try:
            await self._request("DELETE", url, what=f"deleting {url}")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    async def _request(
        self,
        method: str,
        url: str,
        *,
        what: str,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        if self._session is None:
            raise RuntimeError("KubeApi is used outside `async with`")
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json", **(headers or {})} if data else headers
        if self.field_manager and method in WRITES:
            params = {**(params or {}), "fieldManager": self.field_manager}
        try:
            async with self._session.request(
                method, url, data=data, params=params, headers=headers
            ) as response:
                text = await response.text()
                if response.status >= 400:
                    raise _error(response.status, text, what)
                return json.loads(text) if text else {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KubeApiError(0, type(exc).__name__, str(exc), what) from exc


def _error(status: int, text: str, what: str) -> KubeApiError:
    try:
        document = json.loads(text)
        reason, message = str(document.get("reason", "")), str(document.get("message", text))
    except ValueError:
        reason, message = "", text[:500]
    return KubeApiError(status, reason, message, what)
