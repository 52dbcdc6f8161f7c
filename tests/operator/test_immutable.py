"""Fields a real API server refuses to change (422 with its validator's message), refused here
too: a Deployment's selector, a claim's class and size (which may only grow) and the rest of its
spec, a Service's allocated cluster IP, the data of an immutable ConfigMap."""

from __future__ import annotations

from typing import Any

import pytest

from components.core.errors import KubeApiError
from components.runtime.kubeapi import KubeApi
from tests.operator.conftest import NAMESPACE

CORE = f"/api/v1/namespaces/{NAMESPACE}"
APPS = f"/apis/apps/v1/namespaces/{NAMESPACE}"


def _deployment() -> dict[str, Any]:
    labels = {"app": "x"}
    return {
        "metadata": {"name": "x"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "x", "image": "x:1"}]},
            },
        },
    }


def _claim(**spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "state"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": "2Gi"}},
            **spec,
        },
    }


async def _refused(client: KubeApi, url: str, patch: dict[str, Any]) -> str:
    with pytest.raises(KubeApiError) as refused:
        await client.patch(url, patch)
    assert refused.value.status == 422
    return str(refused.value)


async def test_patch_when_deployment_selector_changes_then_422(client: KubeApi) -> None:
    await client.create(f"{APPS}/deployments", _deployment())
    message = await _refused(
        client, f"{APPS}/deployments/x", {"spec": {"selector": {"matchLabels": {"app": "y"}}}}
    )
    assert 'Deployment.apps "x" is invalid: spec.selector: Invalid value' in message
    assert "field is immutable" in message
    replicas = await client.patch(f"{APPS}/deployments/x", {"spec": {"replicas": 3}})
    assert replicas["spec"]["replicas"] == 3  # the rest of the spec may change


async def test_patch_when_claim_shrinks_then_422_and_growth_admitted(client: KubeApi) -> None:
    await client.create(f"{CORE}/persistentvolumeclaims", _claim())
    url = f"{CORE}/persistentvolumeclaims/state"
    shrink = {"spec": {"resources": {"requests": {"storage": "1Gi"}}}}
    assert "field can not be less than previous value" in await _refused(client, url, shrink)
    grown = await client.patch(url, {"spec": {"resources": {"requests": {"storage": "3Gi"}}}})
    assert grown["spec"]["resources"]["requests"]["storage"] == "3Gi"


@pytest.mark.parametrize(
    "patch",
    [{"storageClassName": "slow"}, {"accessModes": ["ReadWriteMany"]}],
    ids=["class", "access-modes"],
)
async def test_patch_when_claim_spec_changes_then_422(
    client: KubeApi, patch: dict[str, Any]
) -> None:
    await client.create(f"{CORE}/persistentvolumeclaims", _claim(storageClassName="fast"))
    message = await _refused(client, f"{CORE}/persistentvolumeclaims/state", {"spec": patch})
    assert "spec is immutable after creation except resources.requests" in message


async def test_patch_when_claim_class_unset_then_it_may_be_set_once(client: KubeApi) -> None:
    """The default class is assigned late to a claim created without one."""
    await client.create(f"{CORE}/persistentvolumeclaims", _claim())
    url = f"{CORE}/persistentvolumeclaims/state"
    await client.patch(url, {"spec": {"storageClassName": "standard"}})
    await _refused(client, url, {"spec": {"storageClassName": "fast"}})


async def test_service_when_created_then_cluster_ip_allocated_and_fixed(client: KubeApi) -> None:
    body = {"metadata": {"name": "svc"}, "spec": {"ports": [{"port": 80}]}}
    created = await client.create(f"{CORE}/services", body)
    address = created["spec"]["clusterIP"]
    assert address.startswith("10.96.") and created["spec"]["clusterIPs"] == [address]
    message = await _refused(client, f"{CORE}/services/svc", {"spec": {"clusterIP": "10.96.9.9"}})
    assert "spec.clusterIP: Invalid value" in message and "field is immutable" in message


async def test_patch_when_config_map_immutable_then_data_refused(client: KubeApi) -> None:
    body = {"metadata": {"name": "fixed"}, "data": {"a": "1"}, "immutable": True}
    await client.create(f"{CORE}/configmaps", body)
    message = await _refused(client, f"{CORE}/configmaps/fixed", {"data": {"a": "2"}})
    assert "data: Forbidden: field is immutable when `immutable` is set" in message
    labelled = await client.patch(
        f"{CORE}/configmaps/fixed", {"metadata": {"labels": {"seen": "yes"}}}
    )
    assert labelled["metadata"]["labels"] == {"seen": "yes"}  # metadata stays mutable
