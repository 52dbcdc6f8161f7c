"""The `strategy` component: feeds bars (and fills, and quotes, trades and timer ticks to a
strategy that handles them) to the configured strategy, publishes each signal it gives, and asks
the risk manager to check it.

A signal becomes an order only through the risk manager (`risk.check`, request/reply). Each check
runs in its own task so bars keep flowing while one is pending. A check that times out or fails
counts as rejected: without an answer from the risk manager nothing is traded (fail safe).

Signal ids are `<component id>-<start time, hex ms>-<n>`, unique across restarts of the process.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable
from typing import Any

import prometheus_client as prom

from components.core import topics, wire
from components.core.errors import BusError
from components.core.events import Bar, CheckSignal, Fill, Quote, Signal, SignalChecked, Trade
from components.runtime.bus import Publisher, Requester
from components.runtime.component import Component
from components.strategy.base import Intent, Strategy, load_strategy

log = logging.getLogger(__name__)

TIMEOUT = "timeout"
APPROVED = "approved"
REJECTED = "rejected"
BAD_REPLY = "BAD_REPLY"  # the rejection reason when the risk manager's answer is unusable
BUS_ERROR = "BUS_ERROR"  # the rejection reason when the request failed without timing out


class StrategyEngine(Component):
    name = "strategy"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.spec.strategy
        # Loaded here, not in run(): a bad class path or params is a config error (exit 2).
        self.strategy: Strategy = load_strategy(config.class_path, config.params)
        self.timeframe = f"{config.bar_interval_s}s"
        self.signals = prom.Counter(
            "strategy_signals",
            "Signals generated, by symbol and side.",
            ["symbol", "side"],
            registry=self.registry,
        )
        self.risk_checks = prom.Counter(
            "strategy_risk_checks",
            "Risk checks of signals, by outcome (approved, rejected, timeout).",
            ["outcome"],
            registry=self.registry,
        )
        for outcome in (APPROVED, REJECTED, TIMEOUT):
            self.risk_checks.labels(outcome)
        self.rejections = prom.Counter(
            "strategy_risk_rejections",
            "Signals the risk manager rejected, by reason code.",
            ["reason"],
            registry=self.registry,
        )
        self.bars_seen = 0
        self.last_signal: dict[str, Any] | None = None
        self._signal_ids = itertools.count(1)
        self._run_id = f"{time.time_ns() // 1_000_000:x}"
        self._checks: set[asyncio.Task[None]] = set()
        self._timer: asyncio.Task[None] | None = None
        self._publisher: Publisher | None = None
        self._requester: Requester | None = None

    async def run(self) -> None:
        self._publisher = self.bus.publisher()
        self._requester = self.bus.requester()
        strategy = self.strategy
        subscriptions = [topics.bar(self.timeframe, ""), topics.FILLS]
        if strategy.handles("on_quote"):
            subscriptions.append(topics.QUOTES)
        if strategy.handles("on_trade"):
            subscriptions.append(topics.TRADES)
        subscriber = self.bus.subscriber(subscriptions)
        log.info("Strategy %s reads %s bars.", strategy.name, self.timeframe)
        if strategy.timer_interval_s is not None:
            self._timer = asyncio.create_task(self._tick(strategy.timer_interval_s))
        async for envelope in subscriber:
            payload = envelope.payload
            if isinstance(payload, Bar):
                self.on_bar(envelope, payload)
            elif isinstance(payload, Quote):
                self._act(strategy.on_quote(payload), envelope.ts_send_ns, envelope.trace_id)
            elif isinstance(payload, Trade):
                self._act(strategy.on_trade(payload), envelope.ts_send_ns, envelope.trace_id)
            elif isinstance(payload, Fill):
                self._act(strategy.on_fill(payload), envelope.ts_send_ns, envelope.trace_id)

    async def _tick(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            now = time.time_ns()
            self._act(self.strategy.on_timer(now), now, "")

    def on_bar(self, envelope: wire.Envelope, bar: Bar) -> None:
        self.bars_seen += 1
        self._act(self.strategy.on_bar(bar), envelope.ts_send_ns, envelope.trace_id)

    def _act(self, intent: Intent | None, ts_origin_ns: int, trace_id: str) -> None:
        """Turn an intent into a signal: ask the risk manager, then tell observers."""
        if intent is None:
            return
        signal = self._signal(intent, ts_origin_ns=ts_origin_ns)
        # The risk check first: it is on the way to an order; the rest is for observers.
        reply_due = self._ask_risk(signal, trace_id)
        assert self._publisher is not None
        self._publisher.publish(
            topics.SIGNALS, signal, ts_event_ns=signal.ts_event_ns, trace_id=trace_id
        )
        self.signals.labels(signal.symbol, signal.side.value).inc()
        self.last_signal = {"signal_id": signal.signal_id, "reason": signal.reason}
        log.info(
            "Signal %s: %s %s %s (%s).",
            signal.signal_id,
            signal.side.value,
            signal.quantity,
            signal.symbol,
            signal.reason,
        )
        task = asyncio.create_task(self._check(signal, reply_due))
        self._checks.add(task)
        task.add_done_callback(self._checks.discard)

    def _signal(self, intent: Intent, ts_origin_ns: int) -> Signal:
        return Signal(
            signal_id=f"{self.settings.component_id}-{self._run_id}-{next(self._signal_ids)}",
            strategy=self.strategy.name,
            symbol=intent.symbol,
            side=intent.side,
            quantity=self.spec.strategy.order_quantity,
            ts_event_ns=time.time_ns(),
            ts_origin_ns=ts_origin_ns,
            reason=intent.reason,
        )

    def _ask_risk(self, signal: Signal, trace_id: str) -> Awaitable[wire.Envelope]:
        """Send the risk check now (not when a task gets round to it): it is the hot path."""
        assert self._requester is not None
        timeout_s = self.spec.strategy.risk_timeout_ms / 1000
        request = CheckSignal(signal=signal, deadline_ns=time.time_ns() + int(timeout_s * 1e9))
        return self._requester.request(
            topics.RISK_CHECK, request, timeout_s=timeout_s, trace_id=trace_id
        )

    async def _check(self, signal: Signal, reply_due: Awaitable[wire.Envelope]) -> None:
        """Wait for the risk manager; anything but a clear approval counts as a rejection."""
        try:
            reply = await reply_due
        except BusError as exc:
            if isinstance(exc.__cause__, TimeoutError):
                self.risk_checks.labels(TIMEOUT).inc()
                log.warning("Signal %s rejected: the risk check timed out.", signal.signal_id)
            else:
                self._rejected(signal, f"{BUS_ERROR}: {exc}")
            return
        checked = reply.payload
        if not isinstance(checked, SignalChecked) or checked.signal_id != signal.signal_id:
            self._rejected(signal, f"{BAD_REPLY}: {type(checked).__name__} from {reply.publisher}")
        elif checked.approved:
            self.risk_checks.labels(APPROVED).inc()
            log.info("Signal %s approved as order %s.", signal.signal_id, checked.client_order_id)
        else:
            self._rejected(signal, checked.reason or "UNSPECIFIED")

    def _rejected(self, signal: Signal, reason: str) -> None:
        self.risk_checks.labels(REJECTED).inc()
        self.rejections.labels(reason.partition(":")[0].strip() or "UNSPECIFIED").inc()
        log.info("Signal %s rejected: %s.", signal.signal_id, reason)

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._checks):
            task.cancel()
        await asyncio.gather(*self._checks, return_exceptions=True)
        if self._requester is not None:
            self._requester.close()

    def status(self) -> dict[str, Any]:
        return {
            **super().status(),
            "strategy": self.strategy.name,
            "timeframe": self.timeframe,
            "bars_seen": self.bars_seen,
            "checks_pending": len(self._checks),
            "last_signal": self.last_signal,
        }
