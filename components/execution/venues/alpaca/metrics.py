"""The Alpaca venue's Prometheus metrics: what its stream and its polls did, and what it refused.

Labels are bounded: `venue` is the venue's name, `reason` and `endpoint` come from fixed sets.
They live in a registry of their own until the engine hands its registry over
(`Venue.register_metrics`), so that a venue built alone (a test, a script) still counts.
"""

from __future__ import annotations

import prometheus_client as prom

POLL_REASONS = ("down", "listening", "silence")
RECONNECT_REASONS = ("silence", "closed", "error")
SKIP_REASONS = ("duplicate", "malformed")
ENDPOINTS = (
    "POST /v2/orders",
    "GET /v2/orders:by_client_order_id",
    "GET /v2/orders",
    "GET /v2/positions",
    "GET /v2/account",
    "trade_updates",
)


class AlpacaMetrics:
    def __init__(self, registry: prom.CollectorRegistry, venue: str = "alpaca") -> None:
        self.registry = registry
        self.polls = prom.Counter(
            "execution_venue_polls",
            "Polls of the followed orders over REST, by reason: the stream is down, it has just "
            "reconnected (listening), or it was silent for silence_timeout_s while orders worked.",
            ["venue", "reason"],
            registry=registry,
        )
        self.reconnects = prom.Counter(
            "execution_venue_stream_reconnects",
            "Times the order-update stream was connected again, by reason (silence: a poll found "
            "updates the open, ping-answering stream never sent).",
            ["venue", "reason"],
            registry=registry,
        )
        self.skipped = prom.Counter(
            "execution_venue_events_skipped",
            "Stream events not reported, by reason (duplicate: an execution already reported).",
            ["venue", "reason"],
            registry=registry,
        )
        self.malformed = prom.Counter(
            "execution_venue_malformed_bodies",
            "Venue answers or stream events that could not be read, by endpoint.",
            ["venue", "endpoint"],
            registry=registry,
        )
        # Zeros from the start, so that rates and alerts work before the first event.
        for reason in POLL_REASONS:
            self.polls.labels(venue, reason)
        for reason in RECONNECT_REASONS:
            self.reconnects.labels(venue, reason)
        for reason in SKIP_REASONS:
            self.skipped.labels(venue, reason)
        for endpoint in ENDPOINTS:
            self.malformed.labels(venue, endpoint)
