"""The real `helm` on the chart: `make tools` puts it in .tools/bin (tests skip without it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "tradingsystem"
NAMESPACE = "trading"
# Every switch of the chart on: what `helm template` must render valid with all of it.
ALL_ON = (
    "system.enabled=true",
    "monitoring.serviceMonitor.enabled=true",
    "monitoring.prometheusRule.enabled=true",
    "monitoring.dashboard.enabled=true",
)


def binary() -> str:
    local = ROOT / ".tools" / "bin" / "helm"
    found = str(local) if local.is_file() else shutil.which("helm")
    if found is None:
        pytest.skip("helm not found in .tools/bin or on PATH: run `make tools` (Linux amd64 only)")
    return found


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [binary(), *args], capture_output=True, text=True, timeout=60, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result


def template(*sets: str) -> list[dict[str, Any]]:
    """The chart's objects as `helm template` renders them with these `--set` values."""
    args = ["template", "demo", str(CHART), "--namespace", NAMESPACE, "--include-crds"]
    for value in sets:
        args += ["--set", value]
    return [doc for doc in yaml.safe_load_all(run(*args).stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [
        obj for obj in objects if obj["kind"] == kind and name in (None, obj["metadata"]["name"])
    ]
    assert len(matches) == 1, f"{len(matches)} {kind} named {name}"
    return matches[0]
