"""`kubectl trading`: status, halt, resume, breaker and uninstall against the emulated API server,
through a kubeconfig as kubectl would (the plugin runs its own event loop, so in a thread here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from components.cli import kubectl_main
from components.runtime.kubeapi import KubeApi, KubeConfig
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, eventually


@pytest.fixture
def kubeconfig(api: ApiServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A person's kubeconfig, not the operator's: the plugin deletes systems and lifts halts,
    which the operator's own account may not (the server's RBAC applies to tokens only)."""
    path = api.write_kubeconfig(tmp_path / "kubeconfig", NAMESPACE)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return path


async def _kubectl(*argv: str) -> int:
    return await asyncio.to_thread(kubectl_main, list(argv))


async def test_halt_then_resume_set_and_clear_spec_halted(
    api: ApiServer, client: KubeApi, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await systems.create(client)
    assert await _kubectl("halt", "demo") == 0
    assert systems.system(api)["spec"]["halted"] is True
    assert await _kubectl("resume", "demo") == 0
    assert systems.system(api)["spec"]["halted"] is False
    assert "resumed" in capsys.readouterr().out


async def test_resume_while_breaker_open_then_refused(
    api: ApiServer, client: KubeApi, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await systems.create(client, systems.manifest(halted=True))
    await systems.report_breaker(client, "open", "DAILY_LOSS: loss=5200, limit=5000", 7)
    assert await _kubectl("resume", "demo") == 1
    assert "the breaker is open (DAILY_LOSS" in capsys.readouterr().err
    assert systems.system(api)["spec"]["halted"] is True


async def test_status_lists_every_system_with_phase_breaker_and_positions(
    api: ApiServer, client: KubeApi, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await systems.create(client)
    await systems.create(client, systems.manifest("paper"))
    await systems.report_breaker(client, "open", "MAX_DRAWDOWN", 7, name="paper")
    summary = {"positions": {"open": 2, "equity": "100250.5", "realized_pnl": "12"}}
    await client.patch(
        "/apis/trading.dev/v1alpha1/namespaces/trading/tradingsystems/demo/status",
        {"status": summary},
    )
    assert await _kubectl("status") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "BREAKER",
        "HALTED",
        "READY",
        "POSITIONS",
        "EQUITY",
    ]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows["demo"][6:] == ["2", "100250.5"]
    assert rows["paper"][3] == "open"


async def test_breaker_shows_reason_and_history(
    api: ApiServer, client: KubeApi, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await systems.create(client)
    history = [
        {
            "state": "open",
            "trigger": "daily_loss",
            "reason": "DAILY_LOSS",
            "ts_ns": 1_700_000_000_000_000_000,
        },
        {
            "state": "half_open",
            "trigger": "cooldown",
            "reason": "probing",
            "ts_ns": 1_700_000_060_000_000_000,
        },
    ]
    breaker = {
        "state": "half_open",
        "trigger": "cooldown",
        "reason": "probing",
        "since_ns": 1_700_000_060_000_000_000,
        "history": history,
    }
    await client.patch(
        "/apis/trading.dev/v1alpha1/namespaces/trading/tradingsystems/demo/status",
        {"status": {"breaker": breaker}},
    )
    assert await _kubectl("breaker", "demo") == 0
    out = capsys.readouterr().out
    assert "trading/demo: breaker half_open since 2023-11-14T22:14:20Z" in out
    assert "2023-11-14T22:13:20Z  open       daily_loss    DAILY_LOSS" in out


async def test_unknown_system_then_exit_1(
    api: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await _kubectl("breaker", "ghost") == 1
    assert "no TradingSystem 'ghost'" in capsys.readouterr().err


async def _orphaned_system(api: ApiServer) -> None:
    """A system its operator left behind: finalizer, an owned execution Deployment, one pod."""
    manifest = systems.manifest()
    manifest["metadata"]["finalizers"] = ["trading.dev/finalizer"]
    body = await api.add(manifest)
    labels = {
        "app.kubernetes.io/name": "tradingsystem",
        "app.kubernetes.io/instance": "demo",
        "app.kubernetes.io/component": "execution",
    }
    owner = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "name": "demo",
        "uid": body["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    pod = {"containers": [{"name": "execution", "image": "tradingsystem:0.1.0"}]}
    await api.add(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "demo-execution",
                "namespace": NAMESPACE,
                "labels": labels,
                "ownerReferences": [owner],
            },
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}, "spec": pod},
            },
        }
    )
    await api.add(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "demo-execution-7f9c", "namespace": NAMESPACE, "labels": labels},
            "spec": pod,
        }
    )


async def test_uninstall_when_no_operator_then_halts_waits_for_pods_then_releases(
    api: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _orphaned_system(api)
    task = asyncio.create_task(_kubectl("uninstall", "demo", "--timeout", "30"))
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    await eventually(lambda: systems.system(api)["metadata"].get("deletionTimestamp"))
    assert systems.system(api)["spec"]["halted"] is True
    assert not task.done()  # the execution pod is still cancelling its orders

    pod_url = f"/api/v1/namespaces/{NAMESPACE}/pods/demo-execution-7f9c"
    async with KubeApi(KubeConfig(server=str(api.servers[0].url).rstrip("/"))) as kube:
        await kube.delete(pod_url)
    assert await task == 0
    assert systems.system(api) is None
    assert systems.deployment(api, "demo", "execution") is None  # collected with its owner
    journal = api.journal()
    halted = next(
        i
        for i, (_, kind, name, obj) in enumerate(journal)
        if kind == "Deployment" and obj["spec"]["replicas"] == 0
    )
    pod_gone = next(
        i for i, (t, kind, _, _) in enumerate(journal) if (t, kind) == ("DELETED", "Pod")
    )
    system_gone = next(
        i for i, (t, kind, _, _) in enumerate(journal) if (t, kind) == ("DELETED", "TradingSystem")
    )
    assert halted < pod_gone < system_gone
    assert "finalizer removed" in capsys.readouterr().out


async def test_uninstall_when_execution_pods_stay_then_exit_1_and_finalizer_kept(
    api: ApiServer, kubeconfig: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await _orphaned_system(api)
    assert await _kubectl("uninstall", "demo", "--timeout", "0.2") == 1
    assert "demo-execution-7f9c still running" in capsys.readouterr().err
    assert systems.system(api)["metadata"]["finalizers"] == ["trading.dev/finalizer"]
    assert systems.replicas(api, "execution") == 0
