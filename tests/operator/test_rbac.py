"""RBAC enforced by the emulated server with the rules the chart renders: a request the
operator's account is not granted is refused with 403 and a real server's Status; a child whose
ownerReference blocks its owner's deletion needs `update` on the owner's finalizers; and over a
representative run (create, update, halt, breaker, drift, delete) the operator uses every right
the chart grants it, but for those listed in UNUSED_ON_PURPOSE with why."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from components.runtime import kubeapi
from components.runtime.kubeapi import KubeApi
from tests.operator import authorization, systems
from tests.operator.apiserver import ApiServer
from tests.operator.authorization import OPERATOR_USER, Authorizer, Right
from tests.operator.conftest import NAMESPACE, Operator, eventually
from tests.operator.test_teardown import _execution_pod
from trading_operator import names

# Rights the chart grants that a run here does not exercise, each with why it is still needed.
UNUSED_ON_PURPOSE = {
    Right("apiextensions.k8s.io", "customresourcedefinitions", verb): (
        "kopf watches CRDs to notice resources appear; the test server serves no CRD API"
    )
    for verb in ("get", "list", "watch")
} | {
    Right("", "namespaces", "get"): "kopf lists and watches namespaces; it never gets one",
    Right("monitoring.coreos.com", "servicemonitors", "create"): (
        "only with spec.monitoring.service_monitor; the test server has no Prometheus Operator"
    ),
    **{
        Right("monitoring.coreos.com", "servicemonitors", verb): "as create: no such CRD here"
        for verb in ("get", "list", "watch", "patch", "delete")
    },
    Right("", "secrets", "get"): "the admin-token Secret is another branch's (contract only)",
    Right("", "secrets", "create"): "as get",
    Right("", "secrets", "patch"): "as get",
    Right("events.k8s.io", "events", "create"): "kopf posts core/v1 Events; events.k8s.io is "
    "granted for clients that post the newer API",
    Right("events.k8s.io", "events", "patch"): "as create",
    Right("", "events", "patch"): "kopf only creates Events",
    Right("trading.dev", "tradingsystems/status", "get"): (
        "granted to each risk manager's Role, and RBAC lets one grant only what one holds"
    ),
}


PART_OF = "app.kubernetes.io/part-of"
TAMPERED = {"metadata": {"labels": {PART_OF: "someone-else"}}}
# Children a person edits by hand in the run (the operator patches each back).
HAND_EDITED = [
    ("v1", "services"),
    ("v1", "serviceaccounts"),
    ("v1", "persistentvolumeclaims"),
    ("networking.k8s.io/v1", "networkpolicies"),
    ("rbac.authorization.k8s.io/v1", "roles"),
    ("rbac.authorization.k8s.io/v1", "rolebindings"),
]


def _child_name(api: ApiServer, kind: tuple[str, str]) -> str:
    resource = next(r for r in api._kinds if f"{r.plural}" == kind[1])
    return next(
        name
        for (res, namespace, name), obj in api._objects.items()
        if res == resource and namespace == NAMESPACE and not obj.deleted
    )


def _labels(api: ApiServer, kind: tuple[str, str]) -> dict[str, str]:
    found = api.object(*kind, NAMESPACE, _child_name(api, kind)) or {}
    return dict(found.get("metadata", {}).get("labels") or {})


@pytest.fixture
async def operator_client(api: ApiServer, rbac: tuple[Authorizer, str]) -> AsyncIterator[KubeApi]:
    """A client holding the operator's token, as the operator's pod would."""
    url = str(api.servers[0].url).rstrip("/")
    async with KubeApi(kubeapi.KubeConfig(server=url, token=rbac[1])) as kube:
        yield kube


async def test_request_when_right_not_granted_then_403_with_a_status(
    api: ApiServer, rbac: tuple[Authorizer, str]
) -> None:
    url = str(api.servers[0].url).rstrip("/")
    headers = {"Authorization": f"Bearer {rbac[1]}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(f"{url}/api/v1/namespaces/{NAMESPACE}/secrets") as listed,
    ):
        body = json.loads(await listed.text())
    assert listed.status == 403
    assert (body["kind"], body["status"], body["reason"], body["code"]) == (
        "Status",
        "Failure",
        "Forbidden",
        403,
    )
    assert body["message"] == (
        f'secrets is forbidden: User "{OPERATOR_USER}" cannot list resource "secrets" in API '
        f'group "" in the namespace "{NAMESPACE}"'
    )


async def test_apply_when_it_would_create_without_the_create_right_then_403(
    api: ApiServer, rbac: tuple[Authorizer, str]
) -> None:
    """The operator may patch TradingSystems but not create them: an apply of a missing one
    is a creation, and a real API server authorizes it as one."""
    url = str(api.servers[0].url).rstrip("/")
    path = f"/apis/trading.dev/v1alpha1/namespaces/{NAMESPACE}/tradingsystems/new"
    body = {
        "apiVersion": "trading.dev/v1alpha1",
        "kind": "TradingSystem",
        "metadata": {"name": "new"},
    }
    headers = {
        "Authorization": f"Bearer {rbac[1]}",
        "Content-Type": "application/apply-patch+yaml",
    }
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.patch(f"{url}{path}?fieldManager=test", data=json.dumps(body)) as applied,
    ):
        status = json.loads(await applied.text())
    assert applied.status == 403
    assert 'cannot create resource "tradingsystems"' in status["message"]


async def test_request_when_outside_the_watched_namespace_then_403(
    api: ApiServer, operator_client: KubeApi
) -> None:
    """Namespaced mode: the operator's Role is in NAMESPACE only."""
    await api.add({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "elsewhere"}})
    deployment = {"metadata": {"name": "x"}, "spec": {}}
    with pytest.raises(kubeapi.KubeApiError) as refused:
        await operator_client.create("/apis/apps/v1/namespaces/elsewhere/deployments", deployment)
    assert refused.value.status == 403
    await operator_client.list(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")  # granted


async def test_request_when_token_unknown_then_401(api: ApiServer) -> None:
    url = str(api.servers[0].url).rstrip("/")
    async with KubeApi(kubeapi.KubeConfig(server=url, token="forged")) as kube:
        with pytest.raises(kubeapi.KubeApiError) as refused:
            await kube.list(f"/api/v1/namespaces/{NAMESPACE}/configmaps")
    assert refused.value.status == 401


async def test_child_blocking_owner_deletion_when_no_finalizers_right_then_403(
    api: ApiServer, client: KubeApi, operator_client: KubeApi, rbac: tuple[Authorizer, str]
) -> None:
    """OwnerReferencesPermissionEnforcement, as a cluster with the plugin enables it."""
    owner = await systems.create(client)
    for role in rbac[0].objects:
        if role["kind"] == "Role":
            role["rules"] = [r for r in role["rules"] if "finalizers" not in str(r["resources"])]
    ref = {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
    child = {"metadata": {"name": "demo-extra", "ownerReferences": [ref]}, "data": {"a": "1"}}
    configmaps = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
    with pytest.raises(kubeapi.KubeApiError) as refused:
        await operator_client.create(configmaps, child)
    assert refused.value.status == 403
    assert "cannot set blockOwnerDeletion" in str(refused.value)
    assert "update tradingsystems/finalizers.trading.dev" in str(refused.value)
    unblocked = copy.deepcopy(child)
    unblocked["metadata"]["ownerReferences"][0]["blockOwnerDeletion"] = False
    await operator_client.create(configmaps, unblocked)  # allowed without the right


async def test_operator_when_finalizers_right_missing_then_children_refused(
    api: ApiServer, client: KubeApi, rbac: tuple[Authorizer, str], kubeconfig: object
) -> None:
    """The defect the finalizers rule fixes: every child create refused, the system never up."""
    for role in rbac[0].objects:
        if role["kind"] == "Role":
            role["rules"] = [r for r in role["rules"] if "finalizers" not in str(r["resources"])]
    running = Operator()
    await running.start()
    try:
        await systems.create(client)
        await eventually(
            lambda: any(
                a.right == Right("trading.dev", "tradingsystems/finalizers", "update")
                for a in rbac[0].denied
            ),
            what="a child create refused for want of the finalizers right",
        )
        assert systems.deployment(api, "demo", "broker") is None
    finally:
        await running.stop()


@pytest.mark.parametrize(
    ("rbac", "operator"), [("namespaced", "namespaced"), ("cluster", "cluster")], indirect=True
)
async def test_representative_run_then_every_granted_right_is_used(
    api: ApiServer, client: KubeApi, operator: Operator, rbac: tuple[Authorizer, str]
) -> None:
    """In each mode the chart offers: a Role per watched namespace, or one ClusterRole."""
    authorizer = rbac[0]
    # create (volumes not retained, so that the deletion deletes them too)
    await systems.create(client, systems.manifest(storage={"retain_on_delete": False}))
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    await eventually(
        lambda: names.FINALIZER in systems.system(api)["metadata"].get("finalizers", []),
        what="the finalizer",
    )
    # update
    await systems.patch(client, {"spec": {"symbols": ["AAPL", "MSFT", "NVDA"]}})
    await eventually(
        lambda: (
            "NVDA"
            in api.object("v1", "configmaps", NAMESPACE, "demo-config")["data"][
                "tradingsystem.yaml"
            ]
        ),
        what="the new symbol in the config",
    )
    # halt by hand, and resume
    await systems.patch(client, {"spec": {"halted": True}})
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")
    await systems.patch(client, {"spec": {"halted": False}})
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="resumed")
    # breaker: the risk manager's report trips the halt
    await systems.report_breaker(client, "open", "DAILY_LOSS: loss=5, limit=1", since_ns=10)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="breaker halt")
    # drift: a child deleted and one edited by hand are put back
    deployments = f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments"
    await client.delete(f"{deployments}/demo-marketdata")
    await client.patch(f"{deployments}/demo-strategy", {"spec": {"replicas": 0}})
    await eventually(lambda: systems.deployment(api, "demo", "marketdata"), what="recreated")
    await eventually(lambda: systems.replicas(api, "strategy") == 1, what="put back")
    for kind in HAND_EDITED:
        await api.write(*kind, NAMESPACE, _child_name(api, kind), TAMPERED)
    for kind in HAND_EDITED:
        await eventually(
            lambda kind=kind: _labels(api, kind).get(PART_OF) == "tradingsystem",
            what=f"{kind[1]} put back",
        )
    # delete: execution stopped first, then the rest
    await api.add(_execution_pod())
    await client.delete(kubeapi.path(*systems.TS, NAMESPACE, "demo"))
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    await client.delete(f"/api/v1/namespaces/{NAMESPACE}/pods/demo-execution-7f9c")
    await eventually(lambda: systems.system(api) is None, what="the system gone")

    denied = sorted({str(a.right) for a in authorizer.denied})
    assert denied == [], f"the operator was refused: {denied}"
    granted = authorizer.granted(OPERATOR_USER)
    assert granted, "no rights found for the operator's account"
    unused = sorted(str(r) for r in granted - authorizer.used - UNUSED_ON_PURPOSE.keys())
    used = sorted(str(r) for r in authorizer.used)
    assert unused == [], f"granted but never used (remove them, or say why): {unused}; {used}"
    stale = sorted(str(r) for r in UNUSED_ON_PURPOSE.keys() & authorizer.used)
    assert stale == [], f"used after all, drop from UNUSED_ON_PURPOSE: {stale}"


def test_unused_on_purpose_lists_only_rights_the_chart_grants() -> None:
    granted: set[Right] = set()
    for mode in ((), (NAMESPACE,)):
        authorizer, _ = authorization.for_operator(mode)
        granted |= authorizer.granted(OPERATOR_USER)
    assert sorted(str(r) for r in UNUSED_ON_PURPOSE.keys() - granted) == []


def test_chart_rbac_when_rendered_then_binds_the_operators_account() -> None:
    objects = authorization.chart_rbac((NAMESPACE,))
    kinds = sorted(obj["kind"] for obj in objects)
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
    for binding in objects:
        if binding["kind"].endswith("Binding"):
            (subject,) = binding["subjects"]
            user = f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
            assert user == OPERATOR_USER
