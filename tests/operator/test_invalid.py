"""An invalid TradingSystem: refused by the API server with a message naming the field (the
CRD's schema and CEL rules); what only the models can check (a fee rate below 1, strategy
parameters) fails the system with a condition naming the field, and never lifts a halt."""

from __future__ import annotations

import pytest

from components.core.errors import KubeApiError
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import Operator, eventually


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"symbols": ["AAPL", "AAPL"]}, "spec.symbols"),
        ({"strategy": {"order_quantity": -5}}, "spec.strategy.order_quantity"),
        ({"marketdata": {"feed": {"kind": "replay"}}}, "spec.marketdata.feed.replay"),
        ({"resume_policy": "later"}, "spec.resume_policy"),
    ],
)
async def test_create_invalid_then_refused_naming_the_field(
    api: ApiServer, client: KubeApi, spec: dict, field: str
) -> None:
    with pytest.raises(KubeApiError) as refused:
        await systems.create(client, systems.manifest(**spec))
    assert refused.value.status == 422
    assert field in refused.value.message
    assert systems.system(api) is None


async def test_spec_only_the_models_refuse_then_failed_naming_the_field(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")

    invalid = {"halted": True, "execution": {"simulated": {"fee_rate": "1.5"}}}
    await systems.patch(client, {"spec": invalid})
    body = await eventually(
        lambda: (s := systems.system(api)).get("status", {}).get("phase") == "Failed" and s
    )
    degraded = systems.condition(body, "Degraded")
    assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
    assert "spec.execution.simulated.fee_rate" in degraded["message"]
    assert systems.replicas(api, "execution") == 0  # the halt holds whatever else is wrong


async def test_strategy_params_invalid_then_failed_naming_the_parameter(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(strategy={"params": {"fast": "soon"}}))
    body = await eventually(lambda: (s := systems.system(api)).get("status", {}).get("phase") and s)
    assert body["status"]["phase"] == "Failed"
    assert "spec.strategy.params.fast" in systems.condition(body, "Degraded")["message"]
    assert systems.deployment(api, "demo", "strategy") is None


async def test_alpaca_venue_without_credentials_secret_then_degraded_saying_so(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(execution={"venue": "alpaca-paper"}))
    body = await eventually(
        lambda: (
            (s := systems.system(api))
            and systems.condition(s, "Degraded").get("reason") == "MissingCredentials"
            and s
        ),
        what="MissingCredentials",
    )
    assert "spec.credentials_secret" in systems.condition(body, "Degraded")["message"]
    assert systems.deployment(api, "demo", "execution") is not None  # the rest still applied

    await systems.patch(client, {"spec": {"credentials_secret": "alpaca-paper"}})
    await eventually(
        lambda: systems.condition(systems.system(api), "Degraded").get("reason") == "AsExpected",
        what="credentials accepted",
    )


async def test_child_the_cluster_cannot_take_then_degraded_apply_failed(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """No Prometheus Operator here: the ServiceMonitor's kind is unknown to this server."""
    await systems.create(client, systems.manifest(monitoring={"service_monitor": True}))
    body = await eventually(
        lambda: (
            (s := systems.system(api))
            and systems.condition(s, "Degraded").get("reason") == "ApplyFailed"
            and s
        ),
        what="ApplyFailed",
    )
    assert "ServiceMonitor demo-metrics" in systems.condition(body, "Degraded")["message"]
    assert systems.deployment(api, "demo", "execution") is not None  # everything else applied
