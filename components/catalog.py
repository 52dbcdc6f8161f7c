"""Every component by name, in start order (a consumer starts before its producers), and how to
load it. Names are what `tradingsystem component NAME` takes and what the operator names pods."""

from __future__ import annotations

import importlib

from components.runtime.component import Component

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
