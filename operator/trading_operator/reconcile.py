"""One reconcile pass of a TradingSystem, in this order (each step returns early on failure):

1. enforce the halt, from the raw object: execution to zero replicas before anything else;
2. validate the spec with the same models as `tradingsystem validate`;
3. create or patch every child (execution's replicas decided in 1);
4. observe the Deployments' readiness;
5. write the status and the Events of its transitions.

Passes of one system never overlap, and a burst of triggers (a child event per child during a
create) coalesces into one pass after the current one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import kopf

from components.core.config import API_VERSION, KIND, TradingSystemSpec, parse_spec
from components.core.errors import ConfigError, KubeApiError
from components.core.status import ComponentStatus
from components.runtime.kubeapi import KubeApi
from trading_operator import builders, events, halt, kinds, metrics, names, status
from trading_operator.apply import apply, create_once
from trading_operator.builders import configmaps, secrets
from trading_operator.settings import OperatorSettings

log = logging.getLogger(__name__)


@dataclass
class _Queue:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    pending: bool = False


class Reconciler:
    def __init__(self, api: KubeApi, settings: OperatorSettings) -> None:
        self.api = api
        self.settings = settings
        self._queues: dict[tuple[str, str], _Queue] = {}
        self.seen: set[tuple[str, str]] = set()
        self.closed = False  # set at shut-down: timers still firing then must not reconcile

    def close(self) -> None:
        self.closed = True

    def forget(self, namespace: str, name: str) -> None:
        self.seen.discard((namespace, name))
        self._queues.pop((namespace, name), None)

    async def request(self, namespace: str, name: str) -> None:
        """Reconcile now, or after the pass in progress; a pass already waiting covers this."""
        queue = self._queues.setdefault((namespace, name), _Queue())
        if queue.pending or self.closed:
            return
        queue.pending = True
        async with queue.lock:
            queue.pending = False
            if not self.closed:
                await self.reconcile(namespace, name)

    async def reconcile(self, namespace: str, name: str) -> None:
        started = time.perf_counter()
        try:
            outcome = await self._pass(namespace, name)
        except kopf.PermanentError:
            metrics.RECONCILES.labels("invalid").inc()
            raise
        except Exception:
            metrics.RECONCILES.labels("error").inc()
            raise
        finally:
            metrics.DURATION.observe(time.perf_counter() - started)
        metrics.RECONCILES.labels(outcome).inc()

    async def _pass(self, namespace: str, name: str) -> str:
        body = await self.api.find(kinds.system_url(namespace, name))
        if body is None or body["metadata"].get("deletionTimestamp"):
            return "skipped"
        self.seen.add((namespace, name))

        # 1. The halt first, whatever else is wrong with the object.
        decision = halt.decide(body)
        if decision.halted:
            await self.scale_execution_to_zero(namespace, name, decision.reason)
        latch = halt.latch_patch(decision, body)
        if latch is not None:
            body = await self.api.patch(kinds.system_url(namespace, name), latch)
            if decision.latch:
                await events.post(self.api, body, "Warning", "HaltLatched", decision.message)
        generation = int(body["metadata"].get("generation", 0))
        observed = status.Observed(generation=generation, halt=decision)

        # 2. The spec, checked as `tradingsystem validate` checks it.
        try:
            spec = validate(body)
        except ConfigError as exc:
            metrics.ERRORS.labels("validate").inc()
            observed.invalid = "; ".join(exc.problems)
            await status.write(self.api, body, status.build(observed, body.get("status") or {}))
            raise kopf.PermanentError(f"invalid spec: {observed.invalid}") from exc

        # 3. Every child.
        system = builders.System(
            name=name,
            namespace=namespace,
            uid=body["metadata"]["uid"],
            spec=spec,
            default_image=self.settings.image,
            execution_replicas=decision.execution_replicas,
        )
        observed.config_hash = configmaps.config_hash(system)
        observed.missing = missing_credentials(spec)
        changed = False
        generated = secrets.admin_secret(system)  # before the risk pod that reads it
        if generated is not None:
            try:
                changed |= await create_once(self.api, generated) != "unchanged"
            except KubeApiError as exc:
                metrics.ERRORS.labels("create_Secret").inc()
                observed.problems.append(f"Secret {generated['metadata']['name']}: {exc}")
        for child in builders.children(system):
            try:
                changed |= await apply(self.api, child) != "unchanged"
            except KubeApiError as exc:
                metrics.ERRORS.labels(f"apply_{child['kind']}").inc()
                observed.problems.append(f"{child['kind']} {child['metadata']['name']}: {exc}")

        # 4. Readiness, 5. status.
        observed.components = await self.readiness(system)
        await status.write(self.api, body, status.build(observed, body.get("status") or {}))
        if observed.problems:
            raise kopf.TemporaryError("; ".join(observed.problems), delay=self.settings.retry_s)
        return "changed" if changed else "unchanged"

    async def scale_execution_to_zero(self, namespace: str, name: str, reason: str) -> None:
        """The halt itself: runs before every other write of a pass, and of a deletion."""
        url = kinds.url("Deployment", namespace, names.deployment(name, "execution"))
        live = await self.api.find(url)
        if live is None or live["spec"].get("replicas", 1) == 0:
            return
        await self.api.patch(url, {"spec": {"replicas": 0}})
        metrics.HALTS.labels(reason).inc()
        log.warning("Execution engine of %s/%s scaled to zero: %s.", namespace, name, reason)

    async def readiness(self, system: builders.System) -> dict[str, ComponentStatus]:
        deployments = await self.api.list(
            kinds.collection("Deployment", system.namespace),
            names.selector_text(names.selector(system.name)),
        )
        found = {
            d["metadata"].get("labels", {}).get("app.kubernetes.io/component"): d
            for d in deployments
        }
        result = {}
        for component in names.COMPONENTS:
            deployment = found.get(component) or {}
            desired = int((deployment.get("spec") or {}).get("replicas", 0))
            ready = int((deployment.get("status") or {}).get("readyReplicas") or 0)
            result[component] = ComponentStatus(
                desiredReplicas=desired, readyReplicas=ready, ready=desired > 0 and ready >= desired
            )
        return result


def missing_credentials(spec: TradingSystemSpec) -> str | None:
    """Alpaca feeds and venues read their keys from the environment, which the operator fills
    from spec.credentials_secret: without it their pods cannot start. Local runs take the keys
    from the shell, so the spec itself does not require the field."""
    users = []
    feed = spec.marketdata.feed
    if feed.kind == "alpaca" or (feed.backup is not None and feed.backup.kind == "alpaca"):
        users.append("marketdata.feed")
    if spec.execution.venue != "simulated":
        users.append(f"execution.venue {spec.execution.venue}")
    if not users or spec.credentials_secret is not None:
        return None
    return (
        f"{' and '.join(users)} need Alpaca keys: set spec.credentials_secret to a Secret "
        "with APCA_API_KEY_ID and APCA_API_SECRET_KEY."
    )


def validate(body: dict[str, Any]) -> TradingSystemSpec:
    from components.strategy.base import load_strategy

    meta = body["metadata"]
    source = f"{meta.get('namespace')}/{meta['name']}"
    manifest = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {"name": meta["name"]},
        "spec": body.get("spec"),
    }
    _, spec = parse_spec(manifest, source)
    if not spec.strategy.class_path.startswith("components."):
        return spec  # a strategy from the components' own image: not importable here, nor safe
    try:
        load_strategy(spec.strategy.class_path, spec.strategy.params, source)
    except ConfigError as exc:
        raise ConfigError(source, [f"spec.{p}" for p in exc.problems]) from exc
    return spec
