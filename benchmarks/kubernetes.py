"""`operator_create` and `operator_halt`: the operator tier's reaction times.

The real kopf operator (in a thread, as in tests/operator) against the emulated API server
(tests/operator/apiserver.py: kmock 0.8 plus what a real server does, including validation of
every object). `operator_create`: from the TradingSystem's POST until every child (17 objects)
exists. `operator_halt`: from the risk manager's breaker report (a patch of `status.breaker`)
until the execution Deployment says 0 replicas. Several systems in turn, one operator.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import kmock
from kopf.testing import KopfRunner

from benchmarks.results import Result
from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi, KubeConfig

TARGET_S = 2.0
SYSTEMS = 8
NAMESPACE = "bench"
CHILDREN = 17  # builders.children() of a default system


def run() -> list[Result]:
    # The operator reads its settings once, when its handlers module is first imported.
    os.environ.setdefault("TS_OPERATOR_METRICS_PORT", "0")
    create_s, halt_s = asyncio.run(_measure())
    return [
        _result("operator_create", create_s, "POST -> all 17 children"),
        _result("operator_halt", halt_s, "breaker report -> execution replicas 0"),
    ]


def _result(name: str, samples: list[float], what: str) -> Result:
    worst = max(samples)
    median = statistics.median(samples)
    return Result(
        name,
        f"<= {TARGET_S:g} s",
        f"median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms",
        worst <= TARGET_S,
        f"{what}, {len(samples)} systems, real kopf against the emulated API server",
        {"median_s": median, "worst_s": worst},
    )


async def _measure() -> tuple[list[float], list[float]]:
    from tests.operator.apiserver import ApiServer

    create_s: list[float] = []
    halt_s: list[float] = []
    with tempfile.TemporaryDirectory(prefix="ts-bench-") as scratch:
        async with ApiServer() as api, kmock.Server(api):
            await api.serve_operator_resources(NAMESPACE)
            kubeconfig = api.write_kubeconfig(Path(scratch) / "kubeconfig", NAMESPACE)
            os.environ["KUBECONFIG"] = str(kubeconfig)
            runner = KopfRunner(
                [
                    "run",
                    "-m",
                    "trading_operator.handlers",
                    "--standalone",
                    f"--namespace={NAMESPACE}",
                ],
                timeout=30,
            )
            await asyncio.to_thread(runner.__enter__)
            try:
                async with KubeApi(KubeConfig.from_environment()) as client:
                    for index in range(SYSTEMS):
                        name = f"bench{index}"
                        created, halted = await _one(api, client, name)
                        create_s.append(created)
                        halt_s.append(halted)
            finally:
                api.stop_watches()
                await asyncio.to_thread(runner.__exit__, None, None, None)
    return create_s, halt_s


async def _one(api: object, client: KubeApi, name: str) -> tuple[float, float]:
    collection = kubeapi.path("trading.dev/v1alpha1", "tradingsystems", NAMESPACE)
    manifest = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": name},
        "spec": {"symbols": ["AAPL", "MSFT"]},
    }
    started = time.perf_counter()
    await client.create(collection, manifest)
    await _until(lambda: _children(api, name) == CHILDREN)
    created = time.perf_counter() - started

    breaker = {"state": "open", "reason": "benchmark", "since_ns": time.time_ns()}
    started = time.perf_counter()
    await client.patch(f"{collection}/{name}/status", {"status": {"breaker": breaker}})
    await _until(lambda: _execution_replicas(api, name) == 0)
    return created, time.perf_counter() - started


def _children(api: object, name: str) -> int:
    return sum(
        1
        for (_, namespace, child), obj in api.objects.items()  # type: ignore[attr-defined]
        if namespace == NAMESPACE
        and not obj.deleted
        and child.startswith(f"{name}-")
        and (obj.get("metadata", {}).get("labels") or {}).get("app.kubernetes.io/instance") == name
    )


def _execution_replicas(api: object, name: str) -> int | None:
    found = api.object("apps/v1", "deployments", NAMESPACE, f"{name}-execution")  # type: ignore[attr-defined]
    return None if found is None else found["spec"]["replicas"]


async def _until(check: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise TimeoutError("the operator did not get there in time")
        await asyncio.sleep(0.002)
