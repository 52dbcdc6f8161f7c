"""`kubectl trading`: status, halt, resume and breaker against the emulated API server, through
a kubeconfig as kubectl would (the plugin runs its own event loop, so in a thread here)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from components.cli import kubectl_main
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer


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
