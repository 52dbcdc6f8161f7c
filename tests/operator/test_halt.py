"""The halt: spec.halted or an open breaker scales the execution engine to zero, before anything
else, and holds against a hand scale-up and an operator restart; resume follows the policy."""

from __future__ import annotations

from components.runtime.kubeapi import KubeApi
from tests.operator import systems
from tests.operator.apiserver import ApiServer
from tests.operator.conftest import NAMESPACE, Operator, eventually


def _halted(api: ApiServer) -> dict:
    return systems.condition(systems.system(api), "Halted")


async def test_manual_halt_then_execution_zero_and_resume_restores_it(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution running")

    await systems.patch(client, {"spec": {"halted": True}})
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    halted = await eventually(lambda: _halted(api).get("status") == "True" and _halted(api))
    assert halted["reason"] == "ManualHalt"
    assert systems.system(api)["status"]["phase"] == "Halted"
    for other in ("broker", "risk", "strategy", "marketdata"):
        assert systems.replicas(api, other) == 1, other

    await systems.patch(client, {"spec": {"halted": False}})
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution resumed")
    await eventually(lambda: _halted(api).get("status") == "False", what="Halted=False")


async def test_breaker_trip_reported_then_execution_zero_and_halt_latched(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution running")

    await systems.report_breaker(client, "open", "DAILY_LOSS_LIMIT: loss=5200, limit=5000", 10)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    halted = await eventually(lambda: _halted(api).get("status") == "True" and _halted(api))
    assert halted["reason"] == "BreakerOpen" and "DAILY_LOSS_LIMIT" in halted["message"]
    body = await eventually(lambda: (s := systems.system(api))["spec"]["halted"] and s)
    assert systems.condition(body, "BreakerOpen")["status"] == "True"

    # resume_policy manual (the default): the breaker closing does not resume by itself.
    await systems.report_breaker(client, "closed", "", 20)
    await eventually(lambda: _halted(api).get("reason") == "BreakerTripped", what="latched halt")
    assert systems.replicas(api, "execution") == 0
    await systems.patch(client, {"spec": {"halted": False}})  # what `kubectl trading resume` does
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="resumed by hand")


async def test_breaker_half_open_with_automatic_policy_then_resumes(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(resume_policy="automatic"))
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution running")
    await systems.report_breaker(client, "open", "MAX_DRAWDOWN", 10)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")
    assert systems.system(api)["spec"]["halted"] is False  # automatic: nothing latched

    await systems.report_breaker(client, "half_open", "probing", 20)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="resumed")


async def test_hand_scale_up_while_halted_then_reverted(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client, systems.manifest(halted=True))
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="created halted")
    versions_before = len(api.versions("apps/v1", "deployments", NAMESPACE, "demo-execution"))

    await api.write(
        "apps/v1", "deployments", NAMESPACE, "demo-execution", {"spec": {"replicas": 3}}
    )
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="scale-up reverted")
    history = api.versions("apps/v1", "deployments", NAMESPACE, "demo-execution")
    assert [v["spec"]["replicas"] for v in history[versions_before:]] == [3, 0]


async def test_operator_restarted_while_halted_then_still_halted(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="execution running")
    await systems.report_breaker(client, "open", "MAX_DRAWDOWN", 10)
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="execution halted")

    await operator.stop()
    await api.write(
        "apps/v1", "deployments", NAMESPACE, "demo-execution", {"spec": {"replicas": 1}}
    )
    await operator.start()
    await eventually(lambda: systems.replicas(api, "execution") == 0, what="halt enforced again")
    assert _halted(api)["status"] == "True"


async def test_breaker_found_by_the_poll_then_latch_event_posted(
    api: ApiServer, client: KubeApi, operator: Operator
) -> None:
    """A pass run by the resync loop (outside any kopf handler) still posts its Events."""
    from tests.operator.test_breaker import risk_status

    await systems.create(client)
    await eventually(lambda: systems.replicas(api, "execution") == 1, what="running")
    async with risk_status({"state": "open", "reason": "MAX_DRAWDOWN", "since_ns": 9}):
        await eventually(lambda: systems.replicas(api, "execution") == 0, what="halted")
    reasons = await eventually(
        lambda: (
            {o["reason"] for k, r, _, o in api.journal() if r == "Event"}
            >= {"HaltLatched", "BreakerOpen"}
            and {o["reason"] for k, r, _, o in api.journal() if r == "Event"}
        ),
        what="the latch's and the condition's Events",
    )
    assert "HaltLatched" in reasons
