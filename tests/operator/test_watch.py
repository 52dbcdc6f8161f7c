"""Watches as a real API server serves them: a bounded window of history (410 Expired, as an
ERROR event, for a watch from a version older than it), bookmarks when asked for, and kopf
re-listing after a 410 and carrying on."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually

CONFIGMAPS = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


async def _watch(api: ApiServer, **params: str) -> list[dict[str, Any]]:
    """Every event of one watch stream on ConfigMaps (it ends by timeoutSeconds)."""
    url = str(api.servers[0].url).rstrip("/") + CONFIGMAPS
    query = {"watch": "true", "timeoutSeconds": "2", **params}
    async with aiohttp.ClientSession() as session, session.get(url, params=query) as response:
        assert response.status == 200
        return [json.loads(line) async for line in response.content if line.strip()]


def _lists(api: ApiServer) -> int:
    """How many times the TradingSystems were listed (not watched)."""
    return sum(
        1
        for request in api._requests
        if request.resource is not None
        and request.resource.plural == "tradingsystems"
        and str(request.method.value) == "GET"
        and request.name is None
        and request.params.get("watch") not in {"true", "1"}
    )


async def _config_maps(client: KubeApi, count: int) -> list[str]:
    versions = []
    for index in range(count):
        body = {"metadata": {"name": f"cm-{index}"}, "data": {"a": "1"}}
        versions.append((await client.create(CONFIGMAPS, body))["metadata"]["resourceVersion"])
    return versions


async def test_watch_when_version_older_than_the_window_then_410_expired_event(
    api: ApiServer, client: KubeApi
) -> None:
    api.watch_window.size = 3
    versions = await _config_maps(client, 5)
    (event,) = await _watch(api, resourceVersion=versions[0])
    assert event["type"] == "ERROR"
    status = event["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")
    assert status["message"].startswith(f"too old resource version: {versions[0]}")


async def test_watch_when_version_inside_the_window_then_replays_what_followed(
    api: ApiServer, client: KubeApi
) -> None:
    api.watch_window.size = 3
    versions = await _config_maps(client, 5)
    events = await _watch(api, resourceVersion=versions[2])
    assert [e["object"]["metadata"]["name"] for e in events] == ["cm-3", "cm-4"]


async def test_watch_when_bookmarks_allowed_then_current_version_bookmarked(
    api: ApiServer, client: KubeApi
) -> None:
    api.watch_window.bookmark_interval_s = 0.3
    versions = await _config_maps(client, 2)
    events = await _watch(api, resourceVersion=versions[-1], allowWatchBookmarks="true")
    marks = [e for e in events if e["type"] == "BOOKMARK"]
    assert len(marks) >= 2  # periodic, and one before the timeout
    assert marks[-1]["object"] == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"resourceVersion": str(api._resource_version)},
    }
    assert not [e for e in await _watch(api, resourceVersion=versions[-1]) if e["type"]]


async def test_operator_when_its_watch_expires_then_relists_and_carries_on(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")

    async def churn_and_compact() -> bool:
        """Writes, then compaction: a stream whose last bookmark predates them gets 410 when it
        resumes (a bookmark after the compaction would spare it, so repeat until one does)."""
        churned.append(f"churn-{len(churned)}")
        body = {"metadata": {"name": churned[-1], "namespace": NAMESPACE}, "data": {}}
        await api.add({"apiVersion": "v1", "kind": "ConfigMap", **body})
        api.watch_window.compact()
        await asyncio.sleep(0.3)
        return api.watch_window.gone_sent > 0

    churned: list[str] = []

    listed = _lists(api)
    await eventually(churn_and_compact, what="a 410 to the operator")
    await eventually(lambda: _lists(api) > listed, what="kopf listing again after the 410")
    await systems.patch(client, {"spec": {"symbols": ["AAPL", "MSFT", "NVDA"]}})
    await eventually(
        lambda: (
            "NVDA"
            in api.object("v1", "configmaps", NAMESPACE, "demo-config")["data"][
                "tradingsystem.yaml"
            ]
        ),
        what="the change reconciled after the re-list",
    )
