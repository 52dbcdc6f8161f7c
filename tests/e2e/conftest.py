"""The cluster every end-to-end test shares, set up by the README's kind + Helm quickstart run as
it stands (image built and loaded, chart installed, the simulated example Ready); deleted at the
end unless TS_E2E_KEEP=1 (to look around after a failure)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster, quickstart, why_not


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
    try:
        # The README's quickstart: image, cluster, chart, the simulated example Ready.
        kube.script(quickstart("kind-helm"))
        yield kube
    finally:
        if os.environ.get("TS_E2E_KEEP") != "1":
            kube.delete()
