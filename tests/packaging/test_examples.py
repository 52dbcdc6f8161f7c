"""The Kubernetes examples (tests/operator/test_crd.py admits every examples/*.yaml against the
CRD): what the operator makes of each is valid against the official schemas; the paper-trading
system takes its keys from the Secret example, in market data and execution only; the halted
system runs without an execution engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.core.config import parse_spec
from tests.e2e import test_lifecycle
from tests.operator.crd_schema import CrdSchema
from trading_operator import halt
from trading_operator.builders import System, children
from trading_operator.builders.deployments import CREDENTIAL_KEYS, NEEDS_CREDENTIALS
from trading_operator.settings import DEFAULT_IMAGE

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
KUBERNETES_EXAMPLES = ("simulated.yaml", "alpaca-paper.yaml", "halted.yaml")


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / name).read_text())


def _children(body: dict[str, Any]) -> list[dict[str, Any]]:
    name, spec = parse_spec(body)
    decision = halt.decide(body)
    system = System(name, "trading", "uid-1", spec, DEFAULT_IMAGE, decision.execution_replicas)
    return children(system)


def _deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    (found,) = [
        obj
        for obj in objects
        if obj["kind"] == "Deployment"
        and obj["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return found


@pytest.mark.parametrize("name", KUBERNETES_EXAMPLES)
def test_what_the_operator_builds_from_each_example_is_valid(name: str) -> None:
    for child in _children(_load(name)):
        if child["kind"] != "ServiceMonitor":
            kubernetes_validate.validate(child, "1.31", strict=True)


def test_paper_trading_reads_its_keys_from_the_secret_example() -> None:
    body = _load("alpaca-paper.yaml")
    secret = _load("secrets/alpaca-paper.yaml")
    kubernetes_validate.validate(secret, "1.31", strict=True)
    assert secret["metadata"]["name"] == body["spec"]["credentials_secret"]
    assert sorted(secret["stringData"]) == sorted(CREDENTIAL_KEYS)
    assert body["spec"]["execution"]["venue"] == "alpaca-paper"
    objects = _children(body)
    for component in ("broker", "risk", "strategy", "marketdata", "execution"):
        container = _deployment(objects, component)["spec"]["template"]["spec"]["containers"][0]
        refs = {
            var["name"]: var["valueFrom"]["secretKeyRef"]
            for var in container["env"]
            if "secretKeyRef" in var.get("valueFrom", {})
        }
        if component in NEEDS_CREDENTIALS:
            assert refs == {
                key: {"name": "alpaca-paper-credentials", "key": key} for key in CREDENTIAL_KEYS
            }
        elif component == "risk":  # its own admin token, and no venue keys
            assert refs == {
                "TS_RISK_ADMIN_TOKEN": {
                    "name": "alpaca-paper-risk-admin",
                    "key": "TS_RISK_ADMIN_TOKEN",
                }
            }
        else:
            assert refs == {}


def test_halted_example_runs_every_component_but_execution() -> None:
    objects = _children(_load("halted.yaml"))
    replicas = {
        obj["metadata"]["labels"]["app.kubernetes.io/component"]: obj["spec"]["replicas"]
        for obj in objects
        if obj["kind"] == "Deployment"
    }
    assert replicas == {"broker": 1, "risk": 1, "strategy": 1, "marketdata": 1, "execution": 0}
    assert halt.decide(_load("halted.yaml")).reason == "ManualHalt"


def test_simulated_example_needs_nothing_outside_the_cluster() -> None:
    spec = _load("simulated.yaml")["spec"]
    assert spec["marketdata"]["feed"]["kind"] == "synthetic"
    assert spec["execution"]["venue"] == "simulated"
    assert "credentials_secret" not in spec


def _merged(base: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """A JSON merge patch (RFC 7386), as `kubectl patch --type=merge` applies it."""
    result = dict(base)
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


@pytest.mark.parametrize("patch", ["CRASH", "CALM"])
def test_e2e_drill_patches_keep_the_simulated_example_valid(patch: str) -> None:
    """The kind suite patches these onto the running example; the API server must take them."""
    body = _merged(_load("simulated.yaml"), {"spec": getattr(test_lifecycle, patch)})
    crd = yaml.safe_load((ROOT / "crds" / "tradingsystem.yaml").read_text())
    _, problems = CrdSchema(crd).admit(body)
    assert problems == []
    parse_spec(body)
