"""Crash injection: the risk manager killed with SIGKILL at random moments of a
`tradingsystem run` is restarted by the supervisor from its state log, and ends with exactly the
positions and cash of a book that saw every fill once and was never killed (the execution
engine's order log is that reference); an open breaker survives a kill with its history."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.execution import orderlog
from components.risk import statelog
from tests.integration.processes import children_of, http_port, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "crash-test-token-7d1e"
SPEC = {
    "symbols": ["AAPL", "MSFT", "NVDA"],
    "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 20}}},
    "strategy": {"params": {"fast": 1, "slow": 2}, "order_quantity": "5"},
    "risk": {
        "limits": {"max_position": "15", "max_notional": "100000"},
        "snapshot_every": 20,  # snapshots and rotations happen between the kills
    },
    "execution": {"simulated": {"fee_per_share": "0.01"}},
}


def status(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=2) as response:
        return dict(json.loads(response.read()))


def ready_risk(data_dir: Path, not_pid: int = 0) -> tuple[int, int]:
    """(pid, port) of a risk process other than `not_pid` that answers /status."""

    def found() -> tuple[int, int] | None:
        pid = children_of(data_dir).get("risk")
        if pid is None or pid == not_pid:
            return None
        port = http_port(pid)
        return (pid, port) if status(port)["ready"] else None

    result: tuple[int, int] = wait_until(found, "a ready risk manager", 30)
    return result


def trip(port: int) -> None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/breaker/trip",
        data=b'{"reason": "crash test"}',
        headers={"Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=2) as response:
        assert response.status == 200


def test_risk_when_killed_at_random_moments_then_restores_exactly_what_was_filled(
    tmp_path: Path,
) -> None:
    config = tmp_path / "busy.yaml"
    config.write_text(yaml.safe_dump(SPEC))
    data_dir = tmp_path / "var"
    command = [sys.executable, "-m", "components", "run", str(config)]
    run = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), "--plain"],
        cwd=ROOT,
        env={**os.environ, "TS_RISK_ADMIN_TOKEN": TOKEN},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    moments = random.Random(20261126)
    try:
        pid, port = ready_risk(data_dir)
        for _ in range(3):
            time.sleep(moments.uniform(0.5, 2.5))
            os.kill(pid, signal.SIGKILL)
            pid, port = ready_risk(data_dir, not_pid=pid)
        time.sleep(2.5)  # fills sent while it was down are re-sent (after 1 s) and booked

        trip(port)
        before = wait_until(
            lambda: (s := status(port))["breaker"]["state"] == "open" and s, "the trip", 5
        )["breaker"]
        wait_until(lambda: "execution" not in children_of(data_dir), "execution halted", 20)
        os.kill(pid, signal.SIGKILL)
        pid, port = ready_risk(data_dir, not_pid=pid)
        assert status(port)["breaker"] == before
    finally:
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert "Component risk exited with -9" in stdout + stderr

    # The reference that was never killed: every fill the execution engine logged, booked once.
    fills = {
        r.fill.fill_id: r.fill
        for r in orderlog.read(data_dir / "execution" / orderlog.ORDER_LOG_NAME)
        if isinstance(r, orderlog.OrderFilled)
    }
    assert len(fills) >= 3, "too few fills to tell anything"
    initial = Decimal(100_000)
    cash, positions = initial, defaultdict(Decimal)
    for fill in fills.values():
        cash -= fill.side.sign * fill.quantity * fill.price + fill.fee
        positions[fill.symbol] += fill.side.sign * fill.quantity

    restored = statelog.load(data_dir / "risk", initial)
    book = restored.state.book
    assert book.cash == cash
    assert {s: h.quantity for s, h in book.holdings.items() if h.quantity} == {
        s: q for s, q in positions.items() if q
    }
    assert restored.state.fill_ids == set(fills)
    assert book.fill_count == len(fills)
    assert restored.state.breaker.state == "open"
    assert restored.snapshot_seq > 0, "no snapshot was taken: raise the load or lower the interval"
