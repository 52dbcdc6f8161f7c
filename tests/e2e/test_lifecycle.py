"""A TradingSystem's life on a real cluster (kind), in order, each test starting where the last
left off: the operator installed by the chart makes examples/simulated.yaml Ready; trades flow
(the execution engine's fills in its metrics); a synthetic crash (a violent random walk against a
tight volatility trigger) trips the breaker, and the operator scales execution to zero and
reports Halted=True; once the crash is over and the breaker half-open, clearing spec.halted
brings execution back; deleting the system keeps its PersistentVolumeClaims (positions, orders).

`make e2e` runs it; elsewhere every test skips and says why (see tests/e2e/cluster.py)."""

from __future__ import annotations

import json
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.cluster import IMAGE, NAMESPACE, RELEASE, Cluster, eventually, quickstart

SYSTEM = "simulated"
CRASH = {
    "marketdata": {"feed": {"synthetic": {"volatility_bps": 500}}},
    "risk": {"breaker": {"max_move_pct": "1"}},
}
CALM = {
    "marketdata": {"feed": {"synthetic": {"volatility_bps": 8}}},
    "risk": {"breaker": {"max_move_pct": "5"}},
}


def _sample(text: str, name: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def _patch(cluster: Cluster, spec: dict[str, object]) -> None:
    body = json.dumps({"spec": spec})
    cluster.kubectl("patch", f"tradingsystem/{SYSTEM}", "--type=merge", "--patch", body)


def _execution_replicas(cluster: Cluster) -> int:
    return int(cluster.get(f"deployment/{SYSTEM}-execution")["spec"]["replicas"])


def _breaker(cluster: Cluster) -> str | None:
    status = cluster.get(f"tradingsystem/{SYSTEM}").get("status") or {}
    return (status.get("breaker") or {}).get("state")


def test_image_runs_as_uid_10001_on_a_read_only_root(cluster: Cluster) -> None:
    out = cluster.run(
        "docker", "run", "--rm", "--read-only", "--tmpfs", "/tmp", IMAGE,
        "sh", "-c", "id -u && tradingsystem crd > /dev/null && echo ok",
    )  # fmt: skip
    assert out.split() == ["10001", "ok"]
    build_tools = subprocess.run(
        ["docker", "run", "--rm", IMAGE, "sh", "-c", "command -v gcc || command -v pip"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert build_tools.returncode != 0, build_tools.stdout


def test_example_becomes_ready(cluster: Cluster) -> None:
    # The README's quickstart applied it and waited already; Ready must hold.
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Ready", "--timeout=5m",
        timeout_s=330,
    )  # fmt: skip
    deployments = cluster.get("deployments", "--selector", f"app.kubernetes.io/instance={SYSTEM}")
    assert len(deployments["items"]) == 5


def test_trades_flow(cluster: Cluster) -> None:
    service = f"{SYSTEM}-execution-metrics"
    fills = eventually(
        "fills in the execution engine's metrics",
        lambda: _sample(cluster.metrics(service), "execution_fills_total"),
        timeout_s=180,
    )
    assert fills > 0
    risk = cluster.metrics(f"{SYSTEM}-risk-metrics")
    assert _sample(risk, "risk_fills_applied_total") > 0


def test_crash_trips_the_breaker_and_halts_execution(cluster: Cluster) -> None:
    _patch(cluster, CRASH)
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Halted=True", "--timeout=5m",
        timeout_s=330,
    )  # fmt: skip
    assert eventually("execution at zero", lambda: _execution_replicas(cluster) == 0)
    assert _breaker(cluster) == "open"
    system = cluster.get(f"tradingsystem/{SYSTEM}")
    assert system["spec"]["halted"] is True  # resume_policy manual latched the halt
    assert eventually(
        "no execution pod",
        lambda: not cluster.get(
            "pods", "--selector",
            f"app.kubernetes.io/instance={SYSTEM},app.kubernetes.io/component=execution",
        )["items"],
    )  # fmt: skip


def test_resume_brings_execution_back(cluster: Cluster) -> None:
    _patch(cluster, CALM)
    eventually("the breaker out of open", lambda: _breaker(cluster) in {"half_open", "closed"})
    _patch(cluster, {"halted": False})
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Halted=False", "--timeout=3m",
        timeout_s=200,
    )  # fmt: skip
    assert eventually("execution back at one", lambda: _execution_replicas(cluster) == 1)
    cluster.kubectl(
        "rollout", "status", f"deployment/{SYSTEM}-execution", "--timeout=3m", timeout_s=200
    )


def test_delete_keeps_the_state_volumes(cluster: Cluster) -> None:
    cluster.kubectl(
        "delete", f"tradingsystem/{SYSTEM}", "--wait=true", "--timeout=5m", timeout_s=330
    )  # returns once the operator's finalizer let go: execution stopped first
    selector = f"app.kubernetes.io/instance={SYSTEM}"
    eventually(
        "the system's Deployments gone",
        lambda: not cluster.get("deployments", "--selector", selector)["items"],
    )
    for component in ("risk", "execution"):
        claim = cluster.get(f"persistentvolumeclaim/{SYSTEM}-{component}-state")
        assert claim["metadata"]["namespace"] == NAMESPACE
        assert not claim["metadata"].get("ownerReferences")  # nothing to garbage-collect it


def test_kubectl_apply_quickstart_without_helm(cluster: Cluster) -> None:
    """The README's second way in: the CRD and trading_operator.deploy's manifests applied by
    hand (after the chart is gone), the example Ready again on its kept volumes."""
    cluster.run("helm", "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait")
    eventually("the chart's operator gone", lambda: not _operator_pods(cluster))
    cluster.script(quickstart("kubectl"))
    system = cluster.get(f"tradingsystem/{SYSTEM}")
    ready = [c for c in system["status"]["conditions"] if c["type"] == "Ready"]
    assert ready[0]["status"] == "True"


def _operator_pods(cluster: Cluster) -> list[dict[str, object]]:
    return cluster.get("pods", "--selector", "app.kubernetes.io/name=trading-operator")["items"]
