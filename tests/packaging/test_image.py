"""The Dockerfile's promises, checked without a Docker engine: a multi-stage build whose final
stage is a slim base with no build tools and no source tree, running as the fixed non-root uid the
pods run as, writable only on the volumes the pods mount (bytecode compiled at build time), with a
build context (.dockerignore) holding exactly what the builder copies; and the builder's step that
matters, building the wheel from that context, done for real."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from trading_operator import deploy, names
from trading_operator.builders.deployments import USER_ID

ROOT = Path(__file__).resolve().parents[2]
BUILD_TOOLS = ("gcc", "build-essential", "make ", "git ", "curl", "wget", "apt-get install")


def _stages() -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined, comments dropped), by stage."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    instructions = "\n".join(lines).replace("\\\n", " ").splitlines()
    stages: list[list[str]] = []
    for instruction in filter(str.strip, instructions):
        if instruction.startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(instruction.strip())
    return stages


def test_two_stages_the_wheel_built_in_the_builder() -> None:
    builder, final = _stages()
    assert re.match(r"FROM \S+ AS builder$", builder[0])
    assert any("pip wheel" in line for line in builder)
    assert final[0] == "FROM ${PYTHON_IMAGE}"
    base = (ROOT / "Dockerfile").read_text().split("ARG PYTHON_IMAGE=", 1)[1].split()[0]
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)


def test_final_stage_has_no_build_tools_and_no_source() -> None:
    _, final = _stages()
    text = "\n".join(final)
    for tool in BUILD_TOOLS:
        assert tool not in text, tool
    copies = [line for line in final if line.startswith("COPY ")]
    assert "COPY --from=builder /opt/venv /opt/venv" in copies
    assert all("components" not in line and "operator" not in line for line in copies)
    assert "pip uninstall --yes pip" in text


def test_runs_as_the_fixed_uid_the_pods_run_as() -> None:
    _, final = _stages()
    assert f"ARG UID={USER_ID}" in final
    user = final.index("USER ${UID}:${UID}")
    assert all(not line.startswith(("RUN ", "USER ")) for line in final[user + 1 :])
    operator_pod = deploy.manifests("ns", "image")[-1]["spec"]["template"]["spec"]
    assert operator_pod["securityContext"]["runAsUser"] == USER_ID


def test_writable_only_on_volumes_with_bytecode_compiled_at_build() -> None:
    builder, final = _stages()
    text = "\n".join(final)
    assert any("compileall" in line for line in builder)
    assert "PYTHONDONTWRITEBYTECODE=1" in text
    assert f"TS_DATA_DIR={names.DATA_DIR}" in text
    assert f'VOLUME ["/tmp", "{names.DATA_DIR}"]' in final
    assert "HOME=/tmp" in text and "TMPDIR=/tmp" in text


def _context_sources() -> list[str]:
    builder, final = _stages()
    sources = []
    for line in builder + final:
        if line.startswith("COPY ") and "--from=" not in line:
            sources += line.split()[1:-1]
    return sources


def test_build_context_is_exactly_what_the_stages_copy() -> None:
    ignore = (ROOT / ".dockerignore").read_text().splitlines()
    rules = [line for line in ignore if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allowlist: nothing reaches the build unless named
    allowed = {rule[1:].rstrip("/") for rule in rules if rule.startswith("!")}
    sources = {source.rstrip("/") for source in _context_sources()}
    assert allowed == sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_builder_builds_the_wheel_from_the_build_context(tmp_path: Path) -> None:
    context = tmp_path / "context"
    for source in _context_sources():
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            context.mkdir(exist_ok=True)
            shutil.copy(origin, context / source)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0 and "No matching distribution" in result.stderr:
        pytest.skip("no package index to fetch setuptools for the isolated build")
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("tradingsystem-*.whl")
    files = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "components/defaults/local.yaml",
        "components/cli.py",
        "trading_operator/handlers.py",
        "trading_operator/deploy.py",
    } <= files
    entry_points = zipfile.ZipFile(wheel).read("tradingsystem-0.1.0.dist-info/entry_points.txt")
    assert b"tradingsystem = components.cli:main" in entry_points
