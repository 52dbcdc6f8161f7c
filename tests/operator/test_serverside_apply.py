"""Server-side apply in the emulated API server (`serverside_apply.py`), as a real server does it:
fields a manager stops applying are removed, fields another manager set are kept or, when the
applier sends a different value, a 409 Conflict (unless forced, which moves the field), map
lists merge by key, and managedFields says who owns what. Requests go over HTTP through the
same client the operator uses."""

from __future__ import annotations

from typing import Any

import pytest

from components.core.errors import KubeApiError
from components.runtime.kubeapi import KubeApi, KubeConfig
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE

URL = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/web"


def _deployment(env: list[dict[str, str]], labels: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": NAMESPACE, "labels": labels or {"app": "web"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "web:1", "env": env}]},
            },
        },
    }


def _container(obj: dict[str, Any]) -> dict[str, Any]:
    return dict(obj["spec"]["template"]["spec"]["containers"][0])


async def _manager(api: ApiServer, name: str) -> Any:
    server = str(api.servers[0].url).rstrip("/")
    return KubeApi(KubeConfig(server=server), field_manager=name)


async def test_apply_when_a_field_is_no_longer_sent_then_it_is_removed(api: ApiServer) -> None:
    env = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    async with await _manager(api, "operator") as kube:
        await kube.apply(URL, _deployment(env, {"app": "web", "tier": "front"}))
        applied = await kube.apply(URL, _deployment(env[:1]))
    assert _container(applied)["env"] == [{"name": "A", "value": "1"}]
    assert applied["metadata"]["labels"] == {"app": "web"}
    (entry,) = applied["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        "operator",
        "Apply",
        "FieldsV1",
    )
    containers = entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    assert set(containers['k:{"name":"web"}']["f:env"]) == {'k:{"name":"A"}'}


async def test_apply_when_another_manager_set_a_field_then_kept_unless_applied(
    api: ApiServer,
) -> None:
    """An HPA's replicas, a sidecar injector's env var: not the applier's, so left alone."""
    env = [{"name": "A", "value": "1"}]
    async with await _manager(api, "operator") as kube, await _manager(api, "hpa") as hpa:
        desired = _deployment(env)
        del desired["spec"]["replicas"]
        await kube.apply(URL, desired)
        await hpa.patch(URL, {"spec": {"replicas": 4}})
        again = await kube.apply(URL, desired)
    assert again["spec"]["replicas"] == 4
    owners = {e["manager"]: e["fieldsV1"] for e in again["metadata"]["managedFields"]}
    assert owners["hpa"] == {"f:spec": {"f:replicas": {}}}


async def test_apply_when_another_manager_owns_a_changed_field_then_conflict_or_force(
    api: ApiServer,
) -> None:
    async with await _manager(api, "operator") as kube, await _manager(api, "person") as person:
        await kube.apply(URL, _deployment([{"name": "A", "value": "1"}]))
        await person.patch(URL, {"spec": {"replicas": 3}})
        with pytest.raises(KubeApiError) as conflict:
            await kube.apply(URL, _deployment([{"name": "A", "value": "1"}]))
        assert conflict.value.status == 409
        assert 'conflict with "person": .spec.replicas' in conflict.value.message
        forced = await kube.apply(URL, _deployment([{"name": "A", "value": "1"}]), force=True)
    assert forced["spec"]["replicas"] == 1
    managers = {e["manager"] for e in forced["metadata"]["managedFields"]}
    assert managers == {"operator"}  # the person's only field moved to the operator


async def test_apply_when_nothing_changes_then_no_new_version(api: ApiServer) -> None:
    async with await _manager(api, "operator") as kube:
        await kube.apply(URL, _deployment([{"name": "A", "value": "1"}]))
        await kube.apply(URL, _deployment([{"name": "A", "value": "1"}]))
    assert len(api.versions("apps/v1", "deployments", NAMESPACE, "web")) == 1


async def test_apply_without_field_manager_then_400(api: ApiServer, client: KubeApi) -> None:
    with pytest.raises(KubeApiError) as refused:
        await client._request(
            "PATCH",
            URL,
            body=_deployment([]),
            headers={"Content-Type": "application/apply-patch+yaml"},
            what="applying",
        )
    assert refused.value.status == 400


async def test_update_with_stale_resource_version_then_409(api: ApiServer, client: KubeApi) -> None:
    async with await _manager(api, "operator") as kube:
        created = await kube.apply(URL, _deployment([]))
    await client.patch(URL, {"spec": {"replicas": 2}})
    stale = {"metadata": {"resourceVersion": created["metadata"]["resourceVersion"]}}
    with pytest.raises(KubeApiError) as conflict:
        await client.patch(URL, {**stale, "spec": {"replicas": 5}})
    assert conflict.value.status == 409
    assert api.object("apps/v1", "deployments", NAMESPACE, "web")["spec"]["replicas"] == 2
