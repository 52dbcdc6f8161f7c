"""The risk manager's Prometheus metrics, one registry per risk manager (live or backtest)."""

from __future__ import annotations

import prometheus_client as prom

from components.core.events import BreakerState

BREAKER_VALUES = {BreakerState.CLOSED: 0, BreakerState.HALF_OPEN: 1, BreakerState.OPEN: 2}


class RiskMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.checks = prom.Counter(
            "risk_checks", "Signals checked, by outcome.", ["outcome"], registry=registry
        )
        self.rejections = prom.Counter(
            "risk_rejections",
            "Signals rejected, by reason and symbol.",
            ["reason", "symbol"],
            registry=registry,
        )
        self.expired = prom.Counter(
            "risk_approvals_expired",
            "Approvals that execution did not acknowledge in time.",
            registry=registry,
        )
        self.fills = prom.Counter("risk_fills_applied", "Fills applied.", registry=registry)
        self.duplicate_fills = prom.Counter(
            "risk_duplicate_fills", "Fills seen again and ignored.", registry=registry
        )
        self.invalid_fills = prom.Counter(
            "risk_invalid_fills",
            "Fills refused: malformed, or outside the bounds of exact accounting.",
            registry=registry,
        )
        self.skipped_quotes = prom.Counter(
            "risk_quotes_skipped", "Quotes refused as malformed or crossed.", registry=registry
        )
        self.torn_lines = prom.Counter(
            "risk_statelog_torn_lines",
            "Torn last lines of the state log cut off on restart.",
            registry=registry,
        )
        self.bad_snapshots = prom.Counter(
            "risk_statelog_bad_snapshots",
            "Unreadable snapshots passed over on restart.",
            registry=registry,
        )
        self.snapshots = prom.Counter(
            "risk_statelog_snapshots", "Snapshots written.", registry=registry
        )
        self.log_failures = prom.Counter(
            "risk_statelog_failures", "Writes to the state log that failed.", registry=registry
        )
        self.stop_exits = prom.Counter(
            "risk_stop_exits", "Exit signals raised by stops, by stop.", ["stop"], registry=registry
        )
        self.breaker_state = prom.Gauge(
            "risk_breaker_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            registry=registry,
        )
        self.breaker_open = prom.Gauge(
            "risk_breaker_open", "1 while the circuit breaker is open.", registry=registry
        )
        self.breaker_transitions = prom.Counter(
            "risk_breaker_transitions",
            "Circuit breaker transitions, by new state and trigger.",
            ["state", "trigger"],
            registry=registry,
        )
        # Gauges are float: fine for display, never used for decisions.
        self.position = prom.Gauge(
            "risk_position", "Position in shares.", ["symbol"], registry=registry
        )
        self.equity = prom.Gauge("risk_equity", "Cash plus positions at mid.", registry=registry)
        self.cash = prom.Gauge("risk_cash", "Cash.", registry=registry)
        self.realized_pnl = prom.Gauge(
            "risk_realized_pnl", "Realized P&L, net of fees.", registry=registry
        )
        self.daily_pnl = prom.Gauge(
            "risk_daily_pnl", "Change in equity since the session started.", registry=registry
        )
        self.pending = prom.Gauge(
            "risk_pending_approvals", "Approved orders not yet filled or closed.", registry=registry
        )

    def show_breaker(self, state: BreakerState) -> None:
        self.breaker_state.set(BREAKER_VALUES[state])
        self.breaker_open.set(1 if state is BreakerState.OPEN else 0)
