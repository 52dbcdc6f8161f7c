"""Every component's HTTP endpoints in a running system: `/health`, `/ready`, `/metrics` (a valid
Prometheus exposition with each component's own metrics), `/status`; and JSON log lines."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.test_local_run import ROOT, _wait_for_line

pytestmark = pytest.mark.integration

STARTED = re.compile(r"Component (\w+) started; health on 127\.0\.0\.1:(\d+)\.")

# A metric each component must export, beyond the bus's and the process's.
OWN_METRIC = {
    "broker": "broker_messages_forwarded",
    "marketdata": "marketdata_events_published",
    "strategy": "strategy_signals",
    "risk": "risk_checks",
    "execution": "execution_orders",
}


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, int]]]:
    """The embedded default running, with each component's HTTP port."""
    data_dir = tmp_path_factory.mktemp("endpoints")
    command = ["run", "--duration", "60", "--data-dir", str(data_dir), "--plain"]
    process = subprocess.Popen(
        [sys.executable, "-m", "components", *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for_line(process, "ready 5/5", timeout_s=30)
        ports: dict[str, int] = {}
        for log_file in (data_dir / "logs").glob("*.log"):
            for line in log_file.read_text().splitlines():
                match = STARTED.search(json.loads(line)["msg"])
                if match:
                    ports[match[1]] = int(match[2])
        yield data_dir, ports
    finally:
        process.send_signal(2)  # SIGINT, as Ctrl-C
        process.communicate(timeout=60)


def _get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@pytest.mark.parametrize("component", sorted(OWN_METRIC))
def test_health_and_ready_when_running_then_200_with_every_check_passing(
    running: tuple[Path, dict[str, int]], component: str
) -> None:
    _, ports = running
    assert _get(ports[component], "/health") == (200, '{"status": "ok"}')
    status, body = _get(ports[component], "/ready")
    ready = json.loads(body)
    assert status == 200, ready
    assert ready["checks"] and all(ready["checks"].values())


@pytest.mark.parametrize("component", sorted(OWN_METRIC))
def test_metrics_when_scraped_then_valid_exposition_with_own_metrics(
    running: tuple[Path, dict[str, int]], component: str
) -> None:
    _, ports = running
    status, text = _get(ports[component], "/metrics")
    assert status == 200
    names = {family.name for family in text_string_to_metric_families(text)}
    assert OWN_METRIC[component] in names
    if component != "broker":
        assert "bus_connected" in names


@pytest.mark.parametrize("component", sorted(OWN_METRIC))
def test_status_when_asked_then_json_naming_the_component(
    running: tuple[Path, dict[str, int]], component: str
) -> None:
    _, ports = running
    status, body = _get(ports[component], "/status")
    assert status == 200
    assert json.loads(body)["component"] == component


def test_logs_when_written_then_every_line_is_a_json_object(
    running: tuple[Path, dict[str, int]],
) -> None:
    data_dir, _ = running
    for log_file in (data_dir / "logs").glob("*.log"):
        for line in log_file.read_text().splitlines():
            record = json.loads(line)
            assert {"ts", "level", "component", "logger", "msg"} <= record.keys(), line


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize("component", sorted(OWN_METRIC))
def test_metrics_when_checked_by_promtool_then_no_problems(
    running: tuple[Path, dict[str, int]], component: str
) -> None:
    _, ports = running
    _, text = _get(ports[component], "/metrics")
    result = subprocess.run(
        ["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
