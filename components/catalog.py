"""Every component by name, in start order (a consumer starts before its producers), and how to
load it. Names are what `tradingsystem component NAME` takes and what the operator names pods."""

from __future__ import annotations

import importlib

import prometheus_client as prom

from components.core.config import TradingSystemSpec
from components.core.errors import ConfigError
from components.runtime.component import Component
from components.runtime.settings import from_environment

COMPONENTS: dict[str, str] = {
    "broker": "components.broker.service:Broker",
    "risk": "components.risk.service:RiskManager",
    "execution": "components.execution.service:ExecutionEngine",
    "strategy": "components.strategy.service:StrategyEngine",
    "marketdata": "components.marketdata.service:MarketData",
}


def load(name: str) -> type[Component]:
    module, _, cls = COMPONENTS[name].partition(":")
    component: type[Component] = getattr(importlib.import_module(module), cls)
    return component


def preflight(spec: TradingSystemSpec, system_name: str, source: str) -> None:
    """Build every component as its process would, without starting it.

    What a component refuses at start (strategy parameters, an unreadable replay file) is then
    refused here, all of it in one `ConfigError`, rather than as children that exit with code 2.
    """
    problems: list[str] = []
    for name in COMPONENTS:
        settings = from_environment(name, system_name, spec.broker, environ={})
        try:
            load(name)(spec, settings, prom.CollectorRegistry())
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(source, problems)
