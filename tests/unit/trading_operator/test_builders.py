"""The pure builders: the spec's Kubernetes fields land where they should (the whole output is
checked against golden files and the official schemas in tests/operator/test_golden.py)."""

from __future__ import annotations

import kubernetes_validate

from components.core.config import parse_spec
from trading_operator import names
from trading_operator.builders import System, children, configmaps, deployments

SPECS = {
    "defaults": {"symbols": ["AAPL"]},
    "everything": {
        "symbols": ["AAPL", "MSFT"],
        "image": "registry.example/ts:1.2",
        "credentials_secret": "alpaca-paper",
        "storage": {"size": "5Gi", "storage_class": "fast-ssd", "retain_on_delete": False},
        "monitoring": {"service_monitor": True, "scrape_interval_s": 30},
        "pods": {
            "strategy": {"replicas": 0, "env": [{"name": "OMP_NUM_THREADS", "value": "1"}]},
            "execution": {"image": "registry.example/ts-exec:1.2"},
        },
    },
}


def _system(spec: dict, execution_replicas: int = 1) -> System:
    return System(
        name="demo",
        namespace="trading",
        uid="0a1b2c3d-0000-4000-8000-000000000001",
        spec=parse_spec(spec)[1],
        default_image="tradingsystem:0.1.0",
        execution_replicas=execution_replicas,
    )


def test_kubernetes_fields_land_in_the_pods() -> None:
    system = _system(SPECS["everything"], execution_replicas=0)
    built = {(c["kind"], c["metadata"]["name"]): c for c in children(system)}
    execution = built["Deployment", "demo-execution"]["spec"]
    strategy = built["Deployment", "demo-strategy"]["spec"]
    assert execution["replicas"] == 0 and strategy["replicas"] == 0
    container = execution["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/ts-exec:1.2"
    secret_refs = [e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e]
    assert secret_refs == [
        {"name": "alpaca-paper", "key": "APCA_API_KEY_ID"},
        {"name": "alpaca-paper", "key": "APCA_API_SECRET_KEY"},
    ]
    risk = built["Deployment", "demo-risk"]["spec"]["template"]["spec"]["containers"][0]
    assert "alpaca-paper" not in str(risk["env"])  # only feed and venue get the keys
    assert risk["image"] == "registry.example/ts:1.2"
    claim = built["PersistentVolumeClaim", "demo-risk-state"]
    assert claim["spec"]["storageClassName"] == "fast-ssd"
    assert claim["metadata"]["ownerReferences"][0]["uid"] == system.uid
    assert ("ServiceMonitor", "demo-metrics") in built
    strategy_env = strategy["template"]["spec"]["containers"][0]["env"]
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in strategy_env


def test_config_hash_changes_with_config_not_with_pods_or_halt() -> None:
    base = _system({"symbols": ["AAPL"]})
    assert configmaps.config_hash(base) == configmaps.config_hash(
        _system({"symbols": ["AAPL"], "halted": True, "pods": {"risk": {"image": "x:1"}}})
    )
    assert configmaps.config_hash(base) != configmaps.config_hash(_system({"symbols": ["MSFT"]}))


def test_only_risk_mounts_a_service_account_token() -> None:
    system = _system({"symbols": ["AAPL"]})
    for component in names.COMPONENTS:
        pod = deployments.deployment(system, component)["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is (component == "risk"), component


def test_operator_manifests_pass_the_official_schemas() -> None:
    from trading_operator import deploy

    rendered = deploy.manifests("trading-system", "tradingsystem:0.1.0")
    for manifest in rendered:
        if manifest["apiVersion"] != "kopf.dev/v1":  # kopf's peering: no official schema
            kubernetes_validate.validate(manifest, "1.31", strict=True)
    operator = rendered[-1]["spec"]
    # Replicas elect a leader (kopf peering), so a rolling update never runs two leaders.
    assert operator["replicas"] == deploy.REPLICAS > 1
    assert operator["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_config_hash_when_a_section_changes_then_only_its_readers_roll() -> None:
    base = {"symbols": ["AAPL"]}
    changes = {
        "strategy": {"strategy": {"params": {"fast": 4, "slow": 9}}},
        "execution": {"execution": {"cancel_timeout_s": 7}},
        "risk": {"risk": {"initial_cash": 5000}},
    }
    before = {c: configmaps.config_hash(_system(base), c) for c in names.COMPONENTS}
    assert set(configmaps.READS) == set(names.COMPONENTS)
    for section, change in changes.items():
        after = {
            c: configmaps.config_hash(_system({**base, **change}), c) for c in names.COMPONENTS
        }
        rolled = {c for c in names.COMPONENTS if after[c] != before[c]}
        assert rolled == {section}, (section, rolled)
