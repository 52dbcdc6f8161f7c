"""The cluster every end-to-end test shares: created once, the image built and loaded, the chart
installed; deleted at the end unless TS_E2E_KEEP=1 (to look around after a failure)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import IMAGE, NAME, NAMESPACE, RELEASE, Cluster, why_not


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = why_not()
    if reason is not None:
        for item in items:
            if "tests/e2e" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    kube = Cluster(Path(tmp_path_factory.mktemp("kind")) / "kubeconfig")
    kube.delete()  # a cluster left by an interrupted run
    kube.create()
    try:
        kube.run("docker", "build", "--tag", IMAGE, ".", timeout_s=1800)
        kube.run("kind", "load", "docker-image", IMAGE, "--name", NAME)
        repository, tag = IMAGE.split(":")
        kube.run(
            "helm", "install", RELEASE, "charts/tradingsystem",
            "--namespace", NAMESPACE, "--create-namespace",
            "--set", f"image.repository={repository}", "--set", f"image.tag={tag}",
            "--set", "image.pullPolicy=Never", "--wait", "--timeout", "5m",
        )  # fmt: skip
        yield kube
    finally:
        if os.environ.get("TS_E2E_KEEP") != "1":
            kube.delete()
