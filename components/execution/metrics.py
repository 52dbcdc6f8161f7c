"""The execution engine's Prometheus metrics (the gateway keeps its own: retries, rate limiter).

Labels are bounded: statuses and reason codes are enums, symbols only the configured ones.
"""

from __future__ import annotations

import prometheus_client as prom


class ExecutionMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.orders = prom.Counter(
            "execution_orders",
            "Order updates published, by status and venue.",
            ["status", "venue"],
            registry=registry,
        )
        self.fills = prom.Counter("execution_fills", "Fills published.", registry=registry)
        self.fills_resent = prom.Counter(
            "execution_fills_resent",
            "Fills sent again because the risk manager had not confirmed them.",
            registry=registry,
        )
        self.final_updates_resent = prom.Counter(
            "execution_final_updates_resent",
            "Final order updates published again because the risk manager still held the order.",
            registry=registry,
        )
        self.duplicates = prom.Counter(
            "execution_duplicate_orders",
            "Orders received again under a known client order id, and dropped.",
            registry=registry,
        )
        self.rejections = prom.Counter(
            "execution_rejections",
            "Orders rejected, by reason code.",
            ["reason"],
            registry=registry,
        )
        self.invalid_transitions = prom.Counter(
            "execution_invalid_transitions",
            "Venue reports refused because no order can move that way.",
            ["from_status", "to_status"],
            registry=registry,
        )
        self.stale_reports = prom.Counter(
            "execution_stale_reports",
            "Venue reports behind what the order already had (duplicates, out of order), ignored.",
            registry=registry,
        )
        self.invalid_reports = prom.Counter(
            "execution_invalid_reports",
            "Venue reports skipped because they cannot be applied (a fill without a price).",
            registry=registry,
        )
        self.unknown_reports = prom.Counter(
            "execution_unknown_order_reports",
            "Venue reports about orders this engine never sent, ignored.",
            registry=registry,
        )
        self.reconciliations = prom.Counter(
            "execution_reconciliations",
            "Orders reconciled with the venue, by outcome (found, absent, error, foreign).",
            ["outcome"],
            registry=registry,
        )
        self.unknown_outcome = prom.Gauge(
            "execution_orders_unknown_outcome",
            "Orders still working at shutdown whose outcome the venue did not tell in time.",
            registry=registry,
        )
        self.submit_latency = prom.Histogram(
            "execution_submit_seconds",
            "From an order's arrival at execution to the venue's acknowledgement.",
            buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5),
            registry=registry,
        )
        slippage_buckets = (-50, -20, -10, -5, -2, 0, 2, 5, 10, 20, 50, 100)
        self.expected_slippage = prom.Histogram(
            "execution_expected_slippage_bps",
            "Pre-trade slippage estimate per order (half spread + square-root impact), in bps.",
            ["symbol"],
            buckets=slippage_buckets,
            registry=registry,
        )
        self.realized_slippage = prom.Histogram(
            "execution_realized_slippage_bps",
            "Fill price against the arrival mid per fill, in bps (paying up is positive).",
            ["symbol"],
            buckets=slippage_buckets,
            registry=registry,
        )
        self.algo_slices = prom.Counter(
            "execution_algo_slices",
            "Child orders of TWAP/VWAP parents sent to the risk manager, by outcome.",
            ["kind", "outcome"],
            registry=registry,
        )
        self.tick_to_order = prom.Histogram(
            "execution_tick_to_order_seconds",
            "From the market data that caused an order to its arrival at execution.",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=registry,
        )
