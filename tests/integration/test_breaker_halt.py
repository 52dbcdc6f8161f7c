"""The circuit breaker in `tradingsystem run`: a feed whose prices crash trips it; from then on
every order is rejected (no approval in the state log after the trip), the trip shows at the risk
manager's `/status` and `/metrics`, and the supervisor stops the execution process. A manual
reset needs the admin token; once reset, the supervisor starts execution again."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.risk import statelog
from tests.integration.processes import children_of, http_port, wait_until

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test-admin-token-5f2c"
START_NS = 1_710_165_600 * 1_000_000_000
CRASH_AT_S = 8  # feed time of the crash: several orders before it


def write_crash_feed(path: Path, seconds: int = 40) -> None:
    """AAPL quotes and trades every 100 ms, alternating each second between two prices (so that
    a fast SMA crossover trades every bar), falling 15 % at CRASH_AT_S."""
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(
            [
                "ts",
                "symbol",
                "kind",
                "price",
                "size",
                "bid_price",
                "bid_size",
                "ask_price",
                "ask_size",
            ]
        )
        for step in range(seconds * 10):
            second = step // 10
            base = 100 if second < CRASH_AT_S else 85
            price = base + (0.5 if second % 2 else 0)
            ts = START_NS + step * 100_000_000
            writer.writerow(
                [
                    ts,
                    "AAPL",
                    "quote",
                    "",
                    "",
                    f"{price - 0.01:.2f}",
                    100,
                    f"{price + 0.01:.2f}",
                    100,
                ]
            )
            writer.writerow([ts, "AAPL", "trade", f"{price:.2f}", 10, "", "", "", ""])


@pytest.fixture
def crash_config(tmp_path: Path) -> Path:
    feed = tmp_path / "crash.csv"
    write_crash_feed(feed)
    spec = {
        "symbols": ["AAPL"],
        "marketdata": {"feed": {"kind": "replay", "replay": {"path": str(feed), "speed": 1.0}}},
        "strategy": {"params": {"fast": 1, "slow": 2}, "order_quantity": "5"},
        "risk": {
            "limits": {"max_position": "1000", "max_notional": "1000000"},
            "breaker": {
                "max_move_pct": "10",
                "volatility_window_s": 60,
                "recovery_wait_s": 3600,
                "allow_reducing_when_open": False,  # every order, even a closing one
            },
        },
    }
    path = tmp_path / "crash.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def get(port: int, path: str) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
        return str(response.read().decode())


def post(port: int, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=b"{}", headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def metric(text: str, name: str) -> float:
    values = [
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    ]
    return sum(values)


def test_breaker_when_prices_crash_then_orders_rejected_execution_stopped_until_reset(
    crash_config: Path, tmp_path: Path
) -> None:
    data_dir = tmp_path / "var"
    env = {**os.environ, "TS_RISK_ADMIN_TOKEN": TOKEN}
    command = [sys.executable, "-m", "components", "run", str(crash_config)]
    run = subprocess.Popen(
        [*command, "--data-dir", str(data_dir), "--plain", "--duration", "60"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        children = wait_until(lambda: "risk" in (c := children_of(data_dir)) and c, "risk", 30)
        port = http_port(children["risk"])
        status = wait_until(
            lambda: (s := json.loads(get(port, "/status")))["breaker"]["state"] == "open" and s,
            "the breaker to open",
            40,
        )
        breaker = status["breaker"]
        assert breaker["reason"].startswith("AAPL fell 15.")
        assert [h["trigger"] for h in breaker["history"]] == ["volatility"]
        metrics = get(port, "/metrics")
        assert metric(metrics, "risk_breaker_open") == 1
        assert (
            metric(metrics, 'risk_breaker_transitions_total{state="open",trigger="volatility"}')
            == 1
        )

        wait_until(lambda: "execution" not in children_of(data_dir), "execution to stop", 20)
        # The strategy keeps trading on the bars after the crash: every signal is refused.
        wait_until(
            lambda: (
                metric(get(port, "/metrics"), 'risk_rejections_total{reason="BREAKER_OPEN"') >= 2
            ),
            "orders rejected while open",
            20,
        )
        assert "execution" not in children_of(data_dir)

        assert post(port, "/breaker/reset", None)[0] == 401
        assert post(port, "/breaker/reset", "wrong")[0] == 401
        code, body = post(port, "/breaker/reset", TOKEN)
        assert (code, body["state"]) == (200, "closed")
        wait_until(lambda: "execution" in children_of(data_dir), "execution to start again", 20)
    finally:
        run.send_signal(signal.SIGINT)
        stdout, stderr = run.communicate(timeout=60)
    assert run.returncode == 0, stderr
    assert TOKEN not in stdout + stderr
    for log in (data_dir / "logs").iterdir():
        assert TOKEN not in log.read_text()

    records = list(statelog.read(data_dir / "risk" / statelog.STATE_LOG_NAME))
    changes = [r for r in records if isinstance(r, statelog.BreakerChanged)]
    assert [(c.state, c.trigger) for c in changes] == [
        ("open", "volatility"),
        ("closed", "manual_reset"),
    ]
    tripped, reset = changes[0].seq, changes[1].seq
    approved = [r.seq for r in records if isinstance(r, statelog.OrderApproved)]
    assert any(seq < tripped for seq in approved), "no order before the crash"
    assert not [seq for seq in approved if tripped < seq < reset], "an order passed while open"

    # What an operator reads offline from the volume afterwards.
    state = subprocess.run(
        [sys.executable, "-m", "components", "state", str(data_dir), "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    report = json.loads(state.stdout)
    assert report["risk"]["last_sequence"] == records[-1].seq
    assert [h["trigger"] for h in report["risk"]["breaker"]["history"]] == [
        "volatility",
        "manual_reset",
    ]
    assert report["execution"]["orders_handled"] >= len([s for s in approved if s < tripped])
