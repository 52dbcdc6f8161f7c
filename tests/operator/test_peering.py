"""Leader election between operator replicas, through kopf peering as the chart sets it up (the
peering CRD and object, the RBAC, `--peering`): while another replica with a higher priority
keeps its keep-alive in the peering object, this one stands by and changes nothing; once that
leader is gone, it takes over."""

from __future__ import annotations

import datetime
import logging

import pytest

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually
from trading_operator import deploy

PEERING = kubeapi.path("kopf.dev/v1", "kopfpeerings", NAMESPACE, deploy.PEERING)


async def test_operator_when_a_higher_priority_replica_leads_then_stands_by_until_it_goes(
    api: ApiServer, client: KubeApi, operator: Operator, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")

    now = datetime.datetime.now(datetime.UTC).isoformat()
    leader = {"priority": 2**31, "lifetime": 60, "lastseen": now}  # what its keep-alive writes
    await client.patch(PEERING, {"status": {"replica-b": leader}})
    await eventually(lambda: "Pausing operations in favour of" in caplog.text, what="a pause")
    paused_version = int(api.journal()[-1][3]["metadata"]["resourceVersion"])

    await systems.patch(client, {"spec": {"halted": True}})
    gone = await client.patch(PEERING, {"status": {"replica-b": None}})
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted after")

    # Nothing was written to the system's children between the pause and the leader leaving.
    paused_at = caplog.text.index("Pausing operations in favour of")
    assert "Resuming operations" in caplog.text[paused_at:]
    standby = [
        (kind, name)
        for _, kind, name, obj in api.journal()
        if kind not in {"TradingSystem", "KopfPeering", "Event"}
        and paused_version
        < int(obj["metadata"]["resourceVersion"])
        <= int(gone["metadata"]["resourceVersion"])
    ]
    assert standby == []
    halted = next(
        obj
        for _, kind, name, obj in api.journal()
        if kind == "Deployment" and name == "demo-execution" and obj["spec"]["replicas"] == 0
    )
    assert int(halted["metadata"]["resourceVersion"]) > int(gone["metadata"]["resourceVersion"])
