"""Pure builders: a TradingSystem in, the manifests of its children out. No API calls here, so
each builder is tested by its output alone (and that output by the official schemas)."""

from __future__ import annotations

from typing import Any

from trading_operator.builders import (
    accounts,
    configmaps,
    deployments,
    monitoring,
    policies,
    services,
    volumes,
)
from trading_operator.builders.system import System

__all__ = ["System", "children"]


def children(system: System) -> list[dict[str, Any]]:
    """Every child in the order they are applied: config and identity first, the execution
    engine last, so that nothing it needs is missing when it starts."""
    config = configmaps.config_map(system)
    result: list[dict[str, Any]] = [config, *accounts.risk_account(system)]
    result += [volumes.state_claim(system, component) for component in ("risk", "execution")]
    result += [services.broker_service(system)]
    result += [services.metrics_service(system, c) for c in deployments.ORDER]
    result += [policies.network_policy(system)]
    result += [deployments.deployment(system, c) for c in deployments.ORDER]
    if system.spec.monitoring.service_monitor:
        result.append(monitoring.service_monitor(system))
    return result
