"""What an operator of the cluster does to a running system, on kind, after test_lifecycle.py
(whose last test leaves the operator installed from `trading_operator.deploy`): halt and resume
with `kubectl trading`; a risk manager that stops reporting halts execution with reason
BreakerStale once `spec.breaker_stale_after_s` passes; `kubectl trading uninstall NAME` halts the
system, then removes the operator's finalizers, so that the system can be deleted without the
operator. `make e2e` runs it; elsewhere every test skips and says why (see tests/e2e/cluster.py)."""

from __future__ import annotations

import json
from typing import Any

import yaml

from tests.e2e.cluster import NAMESPACE, ROOT, Cluster, eventually

SYSTEM = "drill"
PLUGIN = str(ROOT / ".venv" / "bin" / "kubectl-trading")
STALE_AFTER = {"breaker_stale_after_s": 45}
MISSING_IMAGE = "tradingsystem:does-not-exist"  # a risk pod that never starts never reports


def _system(cluster: Cluster) -> dict[str, Any]:
    return cluster.get(f"tradingsystem/{SYSTEM}")


def _condition(cluster: Cluster, type_: str) -> dict[str, Any]:
    for cond in (_system(cluster).get("status") or {}).get("conditions") or []:
        if cond["type"] == type_:
            return dict(cond)
    return {}


def _execution_replicas(cluster: Cluster) -> int:
    return int(cluster.get(f"deployment/{SYSTEM}-execution")["spec"]["replicas"])


def _patch(cluster: Cluster, spec: dict[str, Any]) -> None:
    body = json.dumps({"spec": spec})
    cluster.kubectl("patch", f"tradingsystem/{SYSTEM}", "--type=merge", "--patch", body)


def test_drill_system_becomes_ready(cluster: Cluster, tmp_path: Any) -> None:
    manifest = yaml.safe_load((ROOT / "examples" / "simulated.yaml").read_text())
    manifest["metadata"]["name"] = SYSTEM
    manifest["spec"].update(STALE_AFTER)
    path = tmp_path / "drill.yaml"
    path.write_text(yaml.safe_dump(manifest))
    cluster.kubectl("apply", "-f", str(path))
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Ready", "--timeout=5m",
        timeout_s=330,
    )  # fmt: skip


def test_kubectl_trading_halt_then_resume(cluster: Cluster) -> None:
    cluster.run(PLUGIN, "halt", SYSTEM, "-n", NAMESPACE)
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Halted=True", "--timeout=3m",
        timeout_s=200,
    )  # fmt: skip
    assert eventually("execution at zero", lambda: _execution_replicas(cluster) == 0)
    cluster.run(PLUGIN, "resume", SYSTEM, "-n", NAMESPACE)
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Halted=False", "--timeout=3m",
        timeout_s=200,
    )  # fmt: skip
    assert eventually("execution back at one", lambda: _execution_replicas(cluster) == 1)


def test_risk_manager_silent_then_halted_breaker_stale(cluster: Cluster) -> None:
    _patch(cluster, {"pods": {"risk": {"image": MISSING_IMAGE}}})  # its pod stops, none starts
    halted = eventually(
        "Halted with reason BreakerStale",
        lambda: (c := _condition(cluster, "Halted")).get("reason") == "BreakerStale" and c,
        timeout_s=300,
    )
    assert halted["status"] == "True"
    assert eventually("execution at zero", lambda: _execution_replicas(cluster) == 0)
    # The risk manager back: it reports again, and clearing the halt brings execution back.
    _patch(cluster, {"pods": {"risk": {"image": None}}, "halted": False})
    cluster.kubectl(
        "wait", f"tradingsystem/{SYSTEM}", "--for=condition=Halted=False", "--timeout=5m",
        timeout_s=330,
    )  # fmt: skip
    assert eventually("execution back at one", lambda: _execution_replicas(cluster) == 1)


def test_kubectl_trading_uninstall_halts_then_releases_the_system(cluster: Cluster) -> None:
    cluster.run(PLUGIN, "uninstall", SYSTEM, "-n", NAMESPACE, timeout_s=330)
    # Halted first: no execution pod may be trading while the operator lets go.
    assert _execution_replicas(cluster) == 0
    assert _system(cluster)["spec"]["halted"] is True
    assert not _system(cluster)["metadata"].get("finalizers")
    cluster.kubectl("delete", f"tradingsystem/{SYSTEM}", "--wait=true", "--timeout=1m")
    assert eventually(
        "the system gone",
        lambda: (
            not cluster.get("tradingsystems")["items"]
            or SYSTEM not in {i["metadata"]["name"] for i in cluster.get("tradingsystems")["items"]}
        ),
    )
