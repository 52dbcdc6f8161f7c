"""The kopf handlers, thin, in lifecycle order: start-up (which also starts the resync and
breaker-poll loop, `resync.py`), every event of a TradingSystem, every event of a child,
deletion, shut-down. The work is in `reconcile.py` (one pass), `halt.py`, `status.py` and
`teardown.py`.

Run: `kopf run -m trading_operator.handlers --standalone --all-namespaces
--liveness=http://0.0.0.0:8081/healthz` (one replica, Recreate strategy: see `deploy.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp
import kopf

from components.core.config import API_VERSION
from components.core.errors import KubeApiError
from components.runtime import server
from components.runtime.kubeapi import KubeApi, KubeConfig
from trading_operator import metrics, names, resync, teardown
from trading_operator.reconcile import Reconciler
from trading_operator.settings import from_environment

GROUP, _, VERSION = API_VERSION.partition("/")
SETTINGS = from_environment()  # read once, at import
MANAGED = {"app.kubernetes.io/managed-by": names.MANAGER}
CHILDREN = [
    ("apps", "v1", "deployments"),
    ("", "v1", "services"),
    ("", "v1", "configmaps"),
    ("", "v1", "persistentvolumeclaims"),
    ("networking.k8s.io", "v1", "networkpolicies"),
]


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    config = KubeConfig.from_environment()
    return kopf.ConnectionInfo(
        server=config.server,
        token=config.token,
        ca_path=config.ca_file,
        insecure=config.insecure,
        certificate_path=config.client_cert[0] if config.client_cert else None,
        private_key_path=config.client_cert[1] if config.client_cert else None,
        default_namespace=config.namespace,
    )


@kopf.on.startup()
async def start(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING  # handler log lines become Events only if serious
    if settings.watching.server_timeout is None:
        # Watches end and resume from their resourceVersion now and then, rather than hanging
        # on a connection a load balancer dropped silently.
        settings.watching.server_timeout = 300
    api = KubeApi(KubeConfig.from_environment(), field_manager=names.MANAGER)
    await api.__aenter__()
    memo.reconciler = Reconciler(api, SETTINGS)
    memo.http = aiohttp.ClientSession()
    app = server.build_app(metrics.REGISTRY, lambda: {"api": True}, lambda: {"operator": True})
    memo.metrics_runner = await server.start(app, "0.0.0.0", SETTINGS.metrics_port)
    memo.background = asyncio.create_task(
        resync.run(memo.reconciler, memo.http, SETTINGS), name="resync"
    )


@kopf.on.event(GROUP, VERSION, names.PLURAL, id="reconcile")
async def on_system(
    event: dict[str, Any], namespace: str, name: str, memo: kopf.Memo, **_: Any
) -> None:
    if event.get("type") == "DELETED":
        memo.reconciler.forget(namespace, name)
        return
    await memo.reconciler.request(namespace, name)


def _on_child(group: str, version: str, plural: str) -> None:
    @kopf.on.event(group, version, plural, labels=MANAGED, id=f"child-{plural}")
    async def on_child(namespace: str, labels: dict[str, str], memo: kopf.Memo, **_: Any) -> None:
        """A child changed or went away: the owner's pass puts back what the builder says."""
        system = labels.get("app.kubernetes.io/instance")
        if system:
            await memo.reconciler.request(namespace, system)


for _child in CHILDREN:
    _on_child(*_child)


@kopf.on.delete(GROUP, VERSION, names.PLURAL, id="teardown")
async def on_delete(body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await teardown.teardown(memo.reconciler, dict(body))


@kopf.on.probe(id="api")
async def api_reachable(memo: kopf.Memo, **_: Any) -> bool:
    try:
        await memo.reconciler.api.get("/version")
    except KubeApiError:
        return False
    return True


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    """Stop the loops and close the clients. The finalizers stay: a TradingSystem deleted while
    no operator runs waits (Terminating) for the next one, which halts it first; when no
    operator will ever come back, `kubectl trading uninstall NAME` does the halt-first teardown
    by hand."""
    reconciler: Reconciler = memo.reconciler
    reconciler.close()
    memo.background.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await memo.background
    await memo.http.close()
    await memo.metrics_runner.cleanup()
    await reconciler.api.__aexit__(None, None, None)
