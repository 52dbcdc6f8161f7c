"""The emulated API server does what the operator tests rely on a real server doing."""

from __future__ import annotations

import json

import aiohttp
import pytest

from components.core.errors import KubeApiError
from components.runtime.kubeapi import KubeApi
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE

CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def _config_map(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "data": {"a": "1"}}


async def test_create_stamps_metadata_and_refuses_a_second(client: KubeApi) -> None:
    created = await client.create(CONFIGMAPS, _config_map("one"))
    meta = created["metadata"]
    assert meta["namespace"] == NAMESPACE and meta["uid"] and meta["creationTimestamp"]
    assert int(meta["resourceVersion"]) > 0 and meta["generation"] == 1
    with pytest.raises(KubeApiError) as exists:
        await client.create(CONFIGMAPS, _config_map("one"))
    assert exists.value.status == 409


async def test_stale_resource_version_then_409(client: KubeApi) -> None:
    created = await client.create(CONFIGMAPS, _config_map("one"))
    version = created["metadata"]["resourceVersion"]
    await client.patch(f"{CONFIGMAPS}/one", {"data": {"a": "2"}})
    with pytest.raises(KubeApiError) as stale:
        await client.patch(f"{CONFIGMAPS}/one", {"metadata": {"resourceVersion": version}})
    assert stale.value.status == 409


async def test_json_patch_test_failing_then_422_and_nothing_changed(
    api: ApiServer, client: KubeApi
) -> None:
    await client.create(CONFIGMAPS, _config_map("one"))
    operations = [
        {"op": "test", "path": "/data/a", "value": "9"},
        {"op": "replace", "path": "/data/a", "value": "3"},
    ]
    with pytest.raises(KubeApiError) as failed:
        await client.patch(f"{CONFIGMAPS}/one", operations, patch="json")
    assert failed.value.status == 422
    assert api.object("v1", "configmaps", NAMESPACE, "one")["data"] == {"a": "1"}


async def test_object_the_official_schema_refuses_then_422_naming_the_field(
    client: KubeApi,
) -> None:
    deployment = {
        "metadata": {"name": "bad"},
        "spec": {"replicas": "three", "selector": {}, "template": {}},
    }
    with pytest.raises(KubeApiError) as refused:
        await client.create(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments", deployment)
    assert refused.value.status == 422 and "spec.replicas" in refused.value.message


async def test_patch_that_changes_nothing_then_no_new_version(
    api: ApiServer, client: KubeApi
) -> None:
    await client.create(CONFIGMAPS, _config_map("one"))
    await client.patch(f"{CONFIGMAPS}/one", {"data": {"a": "1"}})
    assert len(api.versions("v1", "configmaps", NAMESPACE, "one")) == 1


async def test_watch_from_a_version_replays_what_followed_and_honours_selector_and_timeout(
    api: ApiServer, client: KubeApi
) -> None:
    listing = await client.get(CONFIGMAPS)
    since = listing["metadata"]["resourceVersion"]
    await client.create(CONFIGMAPS, _config_map("mine", team="a"))
    await client.create(CONFIGMAPS, _config_map("theirs", team="b"))
    url = f"{str(api.servers[0].url).rstrip('/')}{CONFIGMAPS}"
    params = {
        "watch": "true",
        "resourceVersion": since,
        "labelSelector": "team=a",
        "timeoutSeconds": "1",
    }
    async with aiohttp.ClientSession() as session, session.get(url, params=params) as response:
        lines = [json.loads(line) async for line in response.content if line.strip()]
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in lines] == [("ADDED", "mine")]
