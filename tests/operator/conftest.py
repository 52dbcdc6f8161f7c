"""The operator tier's fixtures: a fresh emulated API server per test (`apiserver.ApiServer` on
127.0.0.1, in the test's event loop), and the real kopf operator in its own thread
(`kopf.testing.KopfRunner`, `-m trading_operator.handlers`, with kopf peering as the chart
runs it, serving one namespace), reaching the server through a kubeconfig, as it would reach a
cluster, with its ServiceAccount's token: the server enforces the RBAC the chart renders
(namespaced mode, `authorization.py`), so a right the operator lacks fails here as on a cluster.
`rbac` and `operator` take `cluster` by indirect parametrization: the chart's default mode.

Timers and retries are short here (set before the handlers module is first imported, since its
decorators read them); waits are for a condition under a deadline, never a bare sleep.
"""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import kmock
import kopf
import pytest
from kopf.testing import KopfRunner

from components.runtime.kubeapi import KubeApi, KubeConfig
from tests.operator import authorization
from tests.operator.apiserver import ApiServer
from tests.operator.authorization import Authorizer
from trading_operator import deploy

NAMESPACE = "trading"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Where the operator polls the risk manager's /status: a real component HTTP server that a
# test starts on this port (see test_breaker.py); other tests leave it closed (unreachable).
RISK_STATUS_PORT = _free_port()
OPERATOR_METRICS_PORT = _free_port()
os.environ.update(
    TS_OPERATOR_RESYNC_S="0.5",
    TS_OPERATOR_POLL_S="0.2",
    TS_OPERATOR_RETRY_S="0.2",
    TS_OPERATOR_METRICS_PORT=str(OPERATOR_METRICS_PORT),
    TS_OPERATOR_TEARDOWN_TIMEOUT_S="30",
    TS_OPERATOR_RISK_STATUS_URL=f"http://127.0.0.1:{RISK_STATUS_PORT}/status",
)


@pytest.fixture
def rbac(request: pytest.FixtureRequest) -> tuple[Authorizer, str]:
    """RBAC as the chart renders it for an operator serving NAMESPACE (namespaced mode, the
    mode the test operator runs in; `cluster` by indirect parametrization: the chart's default,
    cluster-wide), and the operator account's token."""
    cluster_wide = getattr(request, "param", "namespaced") == "cluster"
    return authorization.for_operator(() if cluster_wide else (NAMESPACE,))


@pytest.fixture
async def api(rbac: tuple[Authorizer, str]) -> AsyncIterator[ApiServer]:
    async with ApiServer(authorizer=rbac[0]) as server, kmock.Server(server):
        await server.serve_operator_resources(NAMESPACE)
        yield server
        server.stop_watches()


@pytest.fixture
def kubeconfig(
    api: ApiServer, rbac: tuple[Authorizer, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The operator's kubeconfig: its ServiceAccount's token, so RBAC applies to it."""
    path = api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE, token=rbac[1])
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


class Operator:
    """The operator in its thread; `start()`/`stop()` may be called again (a restart)."""

    def __init__(self, cluster_wide: bool = False) -> None:
        self.runner: KopfRunner | None = None
        self.cluster_wide = cluster_wide

    async def start(self) -> None:
        settings = kopf.OperatorSettings()
        settings.watching.server_timeout = 3  # streams end and resume from their version
        settings.watching.reconnect_backoff = 0.05
        settings.networking.request_timeout = 2
        args = [
            "run",
            "-m",
            "trading_operator.handlers",
            f"--peering={deploy.PEERING}",  # as the chart runs it: leader election by kopf
            "--verbose",
            "--all-namespaces" if self.cluster_wide else f"--namespace={NAMESPACE}",
        ]
        self.runner = KopfRunner(args, settings=settings, timeout=20)
        await asyncio.to_thread(self.runner.__enter__)

    async def stop(self) -> None:
        runner, self.runner = self.runner, None
        if runner is not None:
            await asyncio.to_thread(runner.__exit__, None, None, None)

    @property
    def output(self) -> str:
        return "" if self.runner is None else str(self.runner.output)


@pytest.fixture
async def operator(
    api: ApiServer, kubeconfig: Path, request: pytest.FixtureRequest
) -> AsyncIterator[Operator]:
    """The operator serving NAMESPACE; `cluster` by indirect parametrization: all of them."""
    running = Operator(cluster_wide=getattr(request, "param", "namespaced") == "cluster")
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def eventually(
    check: Callable[[], Any | Awaitable[Any]], timeout_s: float = 20.0, what: str = ""
) -> Any:
    """Wait until `check()` is truthy and return it; fail after `timeout_s` saying what."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = check()
        if isinstance(last, Awaitable):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what or check}: {last!r}")


@pytest.fixture
async def client(api: ApiServer) -> AsyncIterator[KubeApi]:
    """A client of the emulated server, as `kubectl` would be."""
    async with KubeApi(KubeConfig(server=str(api.servers[0].url).rstrip("/"))) as kube:
        yield kube
