"""The operator's own Prometheus metrics, served on /metrics by the same HTTP server as every
component (components/runtime/server.py)."""

from __future__ import annotations

import prometheus_client as prom

REGISTRY = prom.CollectorRegistry()
RECONCILES = prom.Counter(
    "trading_operator_reconciles", "Reconcile passes, by outcome.", ["outcome"], registry=REGISTRY
)
ERRORS = prom.Counter(
    "trading_operator_errors",
    "Failures while reconciling, by what was being done.",
    ["stage"],
    registry=REGISTRY,
)
HALTS = prom.Counter(
    "trading_operator_halts",
    "Times the operator scaled a running execution engine to zero, by reason.",
    ["reason"],
    registry=REGISTRY,
)
DURATION = prom.Histogram(
    "trading_operator_reconcile_duration_seconds",
    "Duration of a reconcile pass.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
POLLS = prom.Counter(
    "trading_operator_breaker_polls",
    "Polls of the risk manager's /status, by outcome.",
    ["outcome"],
    registry=REGISTRY,
)
