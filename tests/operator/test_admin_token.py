"""The risk manager's admin token on Kubernetes: without it `/breaker/trip` answers 503, so a
manual trip is impossible. The operator creates a Secret per system with a random token (once:
a later pass never rotates it), owned by the system, and gives it to the risk pod alone; a spec
may name an existing Secret instead. The token appears in no status, Event or log."""

from __future__ import annotations

import base64

import pytest

from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

KEY = "TS_RISK_ADMIN_TOKEN"


def _secret(api: ApiServer, name: str = "demo-risk-admin") -> dict | None:
    return api.object("v1", "secrets", NAMESPACE, name)


def _env(api: ApiServer, component: str) -> dict[str, dict]:
    found = systems.deployment(api, "demo", component)
    assert found is not None
    container = found["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e for e in container.get("env", [])}


async def test_create_then_a_random_token_secret_for_the_risk_pod_only(
    api: ApiServer, client: KubeApi, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    await systems.create(client)
    secret = await eventually(lambda: _secret(api), what="the admin token Secret")
    token = base64.b64decode(secret["data"][KEY]).decode()
    assert len(token) >= 32
    assert secret["metadata"]["ownerReferences"][0]["name"] == "demo"

    await eventually(lambda: systems.deployment(api, "demo", "execution"), what="deployments")
    ref = _env(api, "risk")[KEY]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "demo-risk-admin", "key": KEY}
    for other in ("execution", "strategy", "marketdata", "broker"):
        assert KEY not in _env(api, other), other

    # Another pass (a spec change) keeps the token: rotating it would lock out its users.
    await systems.patch(client, {"spec": {"symbols": ["AAPL", "MSFT", "NVDA"]}})
    await eventually(
        lambda: (systems.system(api).get("status") or {}).get("observedGeneration") == 2,
        what="the spec change reconciled",
    )
    assert base64.b64decode(_secret(api)["data"][KEY]).decode() == token

    # Never shown: not in the system's status, not in any Event, not in the operator's logs.
    assert token not in str(systems.system(api))
    events = [obj for _, kind, _, obj in api.journal() if kind == "Event"]
    assert all(token not in str(event) for event in events)
    assert any(r.name.startswith(("kopf", "trading_operator")) for r in caplog.records)
    assert token not in caplog.text


async def test_spec_names_a_secret_then_the_risk_pod_reads_it_and_none_is_created(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(risk_admin_secret="desk-tokens"))
    await eventually(lambda: systems.deployment(api, "demo", "risk"), what="the risk pod")
    ref = _env(api, "risk")[KEY]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "desk-tokens", "key": KEY}
    assert _secret(api) is None
