"""Children follow the spec: a spec change patches them (and a config change rolls the pods
through the config hash); a child deleted or edited by hand is put back."""

from __future__ import annotations

from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually


def _hash(api: ApiServer, component: str) -> str | None:
    found = systems.deployment(api, "demo", component)
    if found is None:
        return None
    return found["spec"]["template"]["metadata"]["annotations"]["trading.dev/config-hash"]


async def test_spec_change_then_children_patched_and_config_hash_changed(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    components = ("risk", "strategy", "marketdata", "execution")  # each reads the symbols
    before = await eventually(
        lambda: (
            all(_hash(api, c) for c in (*components, "broker"))
            and {c: _hash(api, c) for c in (*components, "broker")}
        ),
        what="config hashes",
    )

    await systems.patch(client, {"spec": {"symbols": ["AAPL", "MSFT", "NVDA"]}})

    def rolled() -> bool:
        return all(_hash(api, c) not in (None, before[c]) for c in components)

    await eventually(rolled, what="every pod template that reads the symbols rolled")
    assert _hash(api, "broker") == before["broker"]  # the broker does not read them
    config = api.object("v1", "configmaps", NAMESPACE, "demo-config")
    assert "NVDA" in config["data"]["tradingsystem.yaml"]
    whole = systems.system(api)["status"].get("configHash")
    assert whole and whole not in before.values()


async def test_strategy_parameter_change_then_only_the_strategy_rolls(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """Rolling the execution engine cancels its working orders: a strategy's parameters are
    none of its business."""
    await systems.create(client)
    await eventually(lambda: systems.deployment(api, "demo", "execution"), what="execution")
    execution = systems.deployment(api, "demo", "execution")
    assert execution is not None
    strategy_before = _hash(api, "strategy")
    params = {"fast": 5, "slow": 30}
    await systems.patch(client, {"spec": {"strategy": {"params": params}}})

    await eventually(lambda: _hash(api, "strategy") != strategy_before, what="strategy rolled")
    config = api.object("v1", "configmaps", NAMESPACE, "demo-config")
    assert "slow: 30" in config["data"]["tradingsystem.yaml"]
    after = systems.deployment(api, "demo", "execution")
    assert after is not None
    assert after["spec"]["template"] == execution["spec"]["template"]
    assert after["metadata"]["resourceVersion"] == execution["metadata"]["resourceVersion"]


async def test_pod_only_change_then_config_hash_unchanged(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """Resources are not configuration: other components do not roll for them."""
    await systems.create(client)
    await eventually(lambda: _hash(api, "risk") and _hash(api, "strategy"), what="config hashes")
    before = (_hash(api, "risk"), _hash(api, "strategy"))
    limits = {"pods": {"strategy": {"resources": {"limits": {"memory": "1Gi"}}}}}
    await systems.patch(client, {"spec": limits})

    def strategy_memory() -> str | None:
        found = systems.deployment(api, "demo", "strategy")
        if found is None:
            return None
        pod = found["spec"]["template"]["spec"]
        return pod["containers"][0]["resources"]["limits"].get("memory")

    await eventually(lambda: strategy_memory() == "1Gi", what="new limit")
    assert (_hash(api, "risk"), _hash(api, "strategy")) == before


async def test_child_deleted_by_hand_then_recreated(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    first = await eventually(lambda: systems.deployment(api, "demo", "marketdata"))
    service = await eventually(lambda: api.object("v1", "services", NAMESPACE, "demo-broker"))

    await client.delete(f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments/demo-marketdata")
    await client.delete(f"/api/v1/namespaces/{NAMESPACE}/services/demo-broker")
    again = await eventually(lambda: systems.deployment(api, "demo", "marketdata"))
    assert again["metadata"]["uid"] != first["metadata"]["uid"]
    back = await eventually(lambda: api.object("v1", "services", NAMESPACE, "demo-broker"))
    assert back["spec"]["ports"] == service["spec"]["ports"]


async def test_child_edited_by_hand_then_put_back(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: api.object("v1", "configmaps", NAMESPACE, "demo-config"))
    original = api.object("v1", "configmaps", NAMESPACE, "demo-config")["data"]

    edit = {"data": {"tradingsystem.yaml": "spec: {}", "extra.yaml": "x: 1"}}
    await api.write("v1", "configmaps", NAMESPACE, "demo-config", edit)
    # The operator's file is put back; the key someone else added is theirs (server-side apply
    # leaves other managers' fields alone), and no component reads it.
    await eventually(
        lambda: (
            api.object("v1", "configmaps", NAMESPACE, "demo-config")["data"]
            == {**original, "extra.yaml": "x: 1"}
        ),
        what="config restored",
    )


def _strategy_container(api: ApiServer) -> dict | None:
    found = systems.deployment(api, "demo", "strategy")
    return None if found is None else found["spec"]["template"]["spec"]["containers"][0]


async def test_env_var_removed_from_spec_then_removed_from_the_deployment(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    env = [{"name": "OMP_NUM_THREADS", "value": "1"}, {"name": "LOG_STYLE", "value": "json"}]
    await systems.create(client, systems.manifest(pods={"strategy": {"env": env}}))

    def names_() -> set[str]:
        container = _strategy_container(api)
        return {e["name"] for e in (container or {}).get("env", [])}

    await eventually(lambda: {"OMP_NUM_THREADS", "LOG_STYLE"} <= names_(), what="both set")
    await systems.patch(client, {"spec": {"pods": {"strategy": {"env": env[:1]}}}})
    await eventually(lambda: "LOG_STYLE" not in names_(), what="LOG_STYLE removed")
    assert "OMP_NUM_THREADS" in names_()


async def test_resource_limit_removed_from_spec_then_removed_from_the_deployment(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """The default memory limit dropped: no limit, not the old one forever."""
    await systems.create(client)
    await eventually(
        lambda: (_strategy_container(api) or {}).get("resources", {}).get("limits"),
        what="the default limit",
    )
    no_limit = {"resources": {"limits": {"memory": None}}}  # a merge patch: null removes it
    await systems.patch(client, {"spec": {"pods": {"strategy": no_limit}}})
    await eventually(
        lambda: (
            "limits" not in (_strategy_container(api) or {"resources": {"limits": 1}})["resources"]
        ),
        what="the limit removed",
    )
    status = await eventually(
        lambda: systems.condition(systems.system(api), "Degraded").get("status") == "False"
    )
    assert status
