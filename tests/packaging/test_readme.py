"""The README's deployment quickstart shows only commands something runs: the kind + Helm and the
kubectl blocks are run as they stand by the kind suite (tests/e2e), every `make` command names a
real target, every path exists, the image tag is the one `make image` builds and the chart runs,
and the operator's manifests the kubectl block pipes into the cluster are valid here already."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.e2e.cluster import quickstart

ROOT = Path(__file__).resolve().parents[2]
BLOCKS = ("kind-helm", "kubectl", "tilt")
RUN_BY_E2E = ("kind-helm", "kubectl")


def _commands(block: str) -> list[list[str]]:
    """Each simple command of a block (pipelines split), as words."""
    commands = []
    for line in quickstart(block).splitlines():
        for part in line.split("|"):
            if part.strip():
                commands.append(shlex.split(part))
    return commands


def test_the_kind_suite_runs_the_helm_and_kubectl_blocks() -> None:
    sources = "".join(path.read_text() for path in (ROOT / "tests" / "e2e").glob("*.py"))
    for block in RUN_BY_E2E:
        assert f'quickstart("{block}")' in sources


def test_the_other_blocks_only_run_make_targets() -> None:
    for block in set(BLOCKS) - set(RUN_BY_E2E):
        assert all(words[0] == "make" for words in _commands(block))


@pytest.mark.parametrize("block", BLOCKS)
def test_every_make_command_names_a_target(block: str) -> None:
    makefile = (ROOT / "Makefile").read_text()
    for words in _commands(block):
        if words[0] == "make":
            for target in words[1:]:
                assert re.search(rf"^{re.escape(target)}:", makefile, re.M), target


@pytest.mark.parametrize("block", BLOCKS)
def test_every_path_exists(block: str) -> None:
    """A word under one of the project's top-level folders (not `deployment/x`) must exist."""
    top = {path.name for path in ROOT.iterdir()}
    for words in _commands(block):
        for word in words:
            if re.fullmatch(r"[\w.-]+(/[\w.-]+)+", word) and word.split("/")[0] in top:
                assert (ROOT / word).exists(), word


def test_image_tag_is_what_make_image_builds_and_the_chart_runs() -> None:
    makefile = (ROOT / "Makefile").read_text()
    built = re.search(r"^IMAGE \?= (\S+)$", makefile, re.M)
    assert built is not None
    chart = yaml.safe_load((ROOT / "charts/tradingsystem/Chart.yaml").read_text())
    assert built[1] == f"tradingsystem:{chart['appVersion']}"
    assert f"kind load docker-image {built[1]} " in quickstart("kind-helm")


def test_the_manifests_the_kubectl_block_applies_are_valid() -> None:
    crds, deploy = [words for words in _commands("kubectl") if "trading_operator.deploy" in words]
    objects = []
    for command in (crds, deploy):  # the peering CRDs first, then what uses them
        result = subprocess.run(
            [sys.executable, *command[1:]], capture_output=True, text=True, timeout=60, check=True
        )
        objects += list(yaml.safe_load_all(result.stdout))
    assert {obj["kind"] for obj in objects} >= {"Deployment", "ClusterRole", "ServiceAccount"}
    for obj in objects:
        if obj["apiVersion"] != "kopf.dev/v1":  # kopf's peering object: its CRD is above
            kubernetes_validate.validate(obj, "1.31", strict=True)
