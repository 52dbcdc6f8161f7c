"""Venues orders are sent to, each a `venues.base.Venue`; `build` makes the configured one."""

from __future__ import annotations

from components.core.config import ExecutionConfig
from components.execution.venues.base import Venue


def build(config: ExecutionConfig) -> Venue:
    """The venue `config.venue` names (Alpaca's keys are read from the environment here)."""
    if config.venue == "simulated":
        from components.execution.venues.simulated import SimulatedExchange

        exchange = SimulatedExchange(config.simulated)
        faults = config.simulated.faults
        if faults is None:
            return exchange
        import random

        from components.execution.venues.faults import FaultyVenue

        return FaultyVenue(exchange, faults, random.Random(faults.seed))
    from components.execution.venues.alpaca import AlpacaVenue

    return AlpacaVenue.from_config(config)
