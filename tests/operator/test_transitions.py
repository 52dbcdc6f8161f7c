"""Transition rules (CEL with `oldSelf`): the API server refuses at admission, with 422 and the
rule's message, a change the cluster would refuse later on a child (a PVC cannot shrink or
change class) or that must not happen by accident (paper to live money). A new system is not a
transition: it may start with any size, class or venue."""

from __future__ import annotations

from typing import Any

import pytest

from components.core.errors import KubeApiError
from components.runtime.kubeapi import KubeApi
from tests.operator.systems import create, manifest, patch


async def _refused(client: KubeApi, change: dict[str, Any]) -> KubeApiError:
    with pytest.raises(KubeApiError) as refused:
        await patch(client, {"spec": change})
    return refused.value


async def test_patch_when_storage_shrinks_then_422_with_the_rule_message(client: KubeApi) -> None:
    await create(client, manifest(storage={"size": "2Gi"}))
    refused = await _refused(client, {"storage": {"size": "1500Mi"}})
    assert refused.status == 422
    assert "spec.storage.size: volumes cannot shrink" in str(refused)


async def test_patch_when_storage_grows_or_is_rewritten_equal_then_admitted(
    client: KubeApi,
) -> None:
    await create(client, manifest(storage={"size": "1Gi"}))
    await patch(client, {"spec": {"storage": {"size": "1024Mi"}}})  # the same quantity
    grown = await patch(client, {"spec": {"storage": {"size": "3Gi"}}})
    assert grown["spec"]["storage"]["size"] == "3Gi"


@pytest.mark.parametrize(
    ("before", "after"),
    [({"storage_class": "fast"}, {"storage_class": "slow"}), ({}, {"storage_class": "fast"})],
    ids=["changed", "set-after-default"],
)
async def test_patch_when_storage_class_changes_then_422(
    client: KubeApi, before: dict[str, Any], after: dict[str, Any]
) -> None:
    await create(client, manifest(storage=before))
    refused = await _refused(client, {"storage": after})
    assert refused.status == 422
    assert "spec.storage.storage_class: is fixed once the volumes exist" in str(refused)


async def test_patch_when_venue_goes_live_unconfirmed_then_422(client: KubeApi) -> None:
    await create(client, manifest(execution={"venue": "alpaca-paper"}))
    refused = await _refused(client, {"execution": {"venue": "alpaca-live"}})
    assert refused.status == 422
    assert "spec.execution.venue: switching a running system to alpaca-live" in str(refused)


async def test_patch_when_venue_goes_live_confirmed_then_admitted(client: KubeApi) -> None:
    await create(client, manifest(execution={"venue": "alpaca-paper"}))
    live = await patch(
        client, {"spec": {"execution": {"venue": "alpaca-live", "live_confirmed": True}}}
    )
    assert live["spec"]["execution"]["venue"] == "alpaca-live"


async def test_create_when_live_with_any_storage_then_admitted(client: KubeApi) -> None:
    """Transition rules hold between versions; a first version has nothing to compare with."""
    body = manifest(execution={"venue": "alpaca-live"}, storage={"size": "10Mi"})
    created = await create(client, body)
    assert created["spec"]["execution"]["live_confirmed"] is False
