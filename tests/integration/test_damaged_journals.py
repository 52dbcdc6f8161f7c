"""A journal damaged after a real run: the risk manager's state log and the execution engine's
order log, each with a damaged *complete* line (newline present, CRC wrong), the last one.

Covers: the next `tradingsystem run` on that data directory refuses in its preflight (exit 1, one
line naming the file and pointing at `--repair`, no traceback, no child started); the component
itself, started as its pod starts it, refuses to start (exit 2, the reason in its JSON log, no
traceback); `tradingsystem state` names file, line and offset; `--repair` moves the damaged
suffix aside, says what it held, and the next run starts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from components.execution import orderlog
from components.risk import statelog
from tests.conftest import free_ports
from tests.integration.processes import children_of
from tests.integration.test_local_run import BUSY_SPEC, ROOT, _cli

pytestmark = pytest.mark.integration

JOURNALS = {
    "risk": Path("risk") / statelog.STATE_LOG_NAME,
    "execution": Path("execution") / orderlog.ORDER_LOG_NAME,
}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The data directory of a real `tradingsystem run --duration 4` that traded."""
    base = tmp_path_factory.mktemp("finished")
    config = base / "busy.yaml"
    config.write_text(yaml.safe_dump(BUSY_SPEC))
    data_dir = base / "var"
    command = ["run", str(config), "--duration", "4", "--data-dir", str(data_dir), "--plain"]
    result = subprocess.run(
        [sys.executable, "-m", "components", *command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 0, result.stderr
    for journal in JOURNALS.values():
        assert (data_dir / journal).read_bytes().count(b"\n") >= 2, journal
    yield data_dir


def damaged_copy(finished_run: Path, tmp_path: Path, component: str) -> tuple[Path, Path]:
    """A copy of the run's data directory whose `component` journal has its last complete line
    damaged (one body byte flipped, newline kept); and that journal's path."""
    data_dir = tmp_path / "var"
    shutil.copytree(finished_run, data_dir)
    path = data_dir / JOURNALS[component]
    data = bytearray(path.read_bytes())
    data[-5] ^= 0x01  # inside the last line's JSON body
    path.write_bytes(bytes(data))
    return data_dir, path


@pytest.mark.parametrize("component", sorted(JOURNALS))
def test_run_when_a_journal_has_a_damaged_complete_line_then_refused_naming_the_file(
    finished_run: Path, tmp_path: Path, component: str
) -> None:
    data_dir, path = damaged_copy(finished_run, tmp_path, component)
    logs_before = {p.name: p.stat().st_size for p in (data_dir / "logs").iterdir()}

    config = str(data_dir / "tradingsystem.yaml")
    result = _cli("run", config, "--data-dir", str(data_dir), "--duration", "2")

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    lines_in_file = path.read_bytes().count(b"\n")
    assert lines[0].startswith(f"error: journal {path}: line {lines_in_file} is corrupt: CRC")
    assert f"tradingsystem state {data_dir} --repair" in lines[0]
    # Refused before any child started: no component wrote a line to its log.
    assert {p.name: p.stat().st_size for p in (data_dir / "logs").iterdir()} == logs_before
    assert children_of(data_dir) == {}


@pytest.mark.parametrize("component", sorted(JOURNALS))
def test_component_when_its_journal_is_damaged_then_refuses_to_start_without_traceback(
    finished_run: Path, tmp_path: Path, component: str
) -> None:
    """As its pod starts it: exit 2 (restarting will not help), the reason in its JSON log."""
    data_dir, path = damaged_copy(finished_run, tmp_path, component)
    env = {
        **os.environ,
        "TS_DATA_DIR": str(data_dir / component),
        "TS_LISTEN_HOST": "127.0.0.1",
        "TS_HTTP_PORT": str(free_ports(1)[0]),
    }
    command = ["component", component, "--config", str(data_dir / "tradingsystem.yaml")]
    result = subprocess.run(
        [sys.executable, "-m", "components", *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    entries = [json.loads(line) for line in result.stderr.splitlines()]
    assert not [e for e in entries if "exc" in e]
    errors = [e["msg"] for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"Component {component} refuses to start: journal {path}: line ")
    assert "--repair" in errors[0]


def test_state_when_repaired_then_damage_moved_aside_and_the_next_run_starts(
    finished_run: Path, tmp_path: Path
) -> None:
    data_dir, path = damaged_copy(finished_run, tmp_path, "execution")
    damaged = path.read_bytes()
    last_line_at = damaged.rstrip(b"\n").rfind(b"\n") + 1
    lines = damaged.count(b"\n")

    found = _cli("state", str(data_dir))
    assert found.returncode == 1
    assert f"{path}: line {lines} is corrupt" in found.stdout
    assert f"at byte {last_line_at}" in found.stdout
    assert path.read_bytes() == damaged  # reading never writes

    repaired = _cli("state", str(data_dir), "--repair")
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    (side_file,) = path.parent.glob(f"{path.name}.damaged-*")
    assert side_file.read_bytes() == damaged[last_line_at:]
    assert path.read_bytes() == damaged[:last_line_at]
    moved = f"moved 1 line ({len(damaged) - last_line_at} bytes) from line {lines} "
    assert f"Repaired {path}: {moved}(byte {last_line_at}) to {side_file}" in repaired.stdout
    assert _cli("state", str(data_dir)).returncode == 0

    config = str(data_dir / "tradingsystem.yaml")
    again = _cli("run", config, "--data-dir", str(data_dir), "--duration", "2", "--plain")
    # Past the preflight, every component started. (Not the exit code: the summary counts a
    # fill that execution re-sends, its confirmation having been moved aside, a second time.)
    assert "ready 5/5" in again.stdout, again.stdout + again.stderr
    assert "error:" not in again.stderr and "Traceback" not in again.stderr
