"""The builders' output for named scenarios equals the committed files in golden/, so a review
reads the difference a change makes to the manifests. `make golden` rewrites them; each is also
checked by the official schemas (strict)."""

from __future__ import annotations

import os
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components.core.config import parse_spec
from trading_operator.builders import System, children

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
SCENARIOS = {
    # The smallest system: every default.
    "defaults": ({"symbols": ["AAPL"]}, 1),
    # Halted: execution at zero replicas, nothing else different.
    "halted": ({"symbols": ["AAPL"], "halted": True}, 0),
    # Every Kubernetes field set: images, credentials, storage, env, a paused strategy, monitoring.
    "everything": (
        {
            "symbols": ["AAPL", "MSFT"],
            "image": "registry.example/ts:1.2",
            "credentials_secret": "alpaca-paper",
            "execution": {"venue": "alpaca-paper"},
            "storage": {"size": "5Gi", "storage_class": "fast-ssd", "retain_on_delete": False},
            "monitoring": {"service_monitor": True, "scrape_interval_s": 30},
            "pods": {
                "strategy": {"replicas": 0, "env": [{"name": "OMP_NUM_THREADS", "value": "1"}]},
                "execution": {"image": "registry.example/ts-exec:1.2"},
            },
        },
        1,
    ),
}


def render(scenario: str) -> str:
    spec, execution_replicas = SCENARIOS[scenario]
    system = System(
        name="demo",
        namespace="trading",
        uid="00000000-0000-4000-8000-000000000001",
        spec=parse_spec(spec)[1],
        default_image="tradingsystem:0.1.0",
        execution_replicas=execution_replicas,
    )
    header = f"# Scenario {scenario!r}: tests/operator/test_golden.py. Rewrite: make golden\n"
    return header + yaml.safe_dump_all(children(system), sort_keys=True, width=100)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_builders_output_matches_golden(scenario: str) -> None:
    path = GOLDEN / f"{scenario}.yaml"
    rendered = render(scenario)
    if UPDATE:
        path.write_text(rendered)
    assert path.read_text() == rendered, f"{path.name} differs: run `make golden` and review"
    for manifest in yaml.safe_load_all(rendered):
        if manifest["kind"] != "ServiceMonitor":  # a Prometheus Operator kind: no schema
            kubernetes_validate.validate(manifest, "1.31", strict=True)
