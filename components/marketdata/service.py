"""The `marketdata` component: runs the configured feed and publishes its quotes and trades, and
the bars built from the trades, on the broker.

Topics: `md.quote.<SYM>`, `md.trade.<SYM>` and `md.bar.<N>s.<SYM>` for each of
`marketdata.bar_intervals_s`. A bar closed by a trade carries that trade's trace id, so a signal
(and the order after it) can be followed back to the tick that caused it; a bar closed by the
timer starts a trace of its own.

When a replay without `loop` reaches the end of its file, the component closes its open bars and
idles: it stays up, reports `finished` in `/status`, and keeps serving its metrics.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

import prometheus_client as prom

from components.core import topics
from components.core.errors import ConfigError
from components.core.events import Bar, Quote, Trade
from components.marketdata import bars, replay, synthetic
from components.runtime.bus import Publisher
from components.runtime.component import Component

log = logging.getLogger(__name__)

BAR_TIMER_INTERVAL_S = 0.1
LATE_TRADE = "late_trade"  # a dropped-events reason of the bar builders, next to replay's

FeedState = Literal["starting", "running", "finished", "failed"]


class Feed(Protocol):
    def stream(self) -> AsyncIterator[Quote | Trade]: ...

    def clock_ns(self) -> int:
        """Event time now, by the feed's own clock: what closes bars when nothing trades."""
        ...


class MarketData(Component):
    name = "marketdata"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.published = prom.Counter(
            "marketdata_events_published",
            "Market-data events published, by kind (quote, trade, bar).",
            ["kind"],
            registry=self.registry,
        )
        self.dropped = prom.Counter(
            "marketdata_events_dropped",
            "Market-data events dropped before publication, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in (*replay.DropReason, LATE_TRADE):
            self.dropped.labels(reason)  # zeros from the start, so rates work on the first drop
        self.builders = [bars.BarBuilder(n) for n in self.spec.marketdata.bar_intervals_s]
        self.feed_state: FeedState = "starting"
        self.events_published = 0
        self._late_seen = [0] * len(self.builders)
        self._last: dict[str, dict[str, str]] = {}
        self._publisher: Publisher | None = None
        # Built here, not in run(): an unreadable replay file is a config error (exit 2).
        self.feed = self.build_feed()

    def build_feed(self) -> Feed:
        config = self.spec.marketdata.feed
        if config.kind == "synthetic":
            return synthetic.SyntheticFeed(config.synthetic, self.spec.symbols)
        assert config.replay is not None  # FeedConfig guarantees it
        try:
            return replay.ReplayFeed(
                config.replay.path,
                self.spec.symbols,
                speed=config.replay.speed,
                loop=config.replay.loop,
                on_drop=lambda reason: self.dropped.labels(reason.value).inc(),
            )
        except (OSError, ValueError) as exc:
            why = f"cannot read it: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
            raise ConfigError(
                "marketdata", [f"marketdata.feed.replay.path: {config.replay.path!r}: {why}"]
            ) from exc

    async def run(self) -> None:
        self._publisher = self.bus.publisher()
        feed = self.feed
        timer = asyncio.create_task(self._close_due_bars(feed), name="marketdata.bar-timer")
        try:
            self.feed_state = "running"
            log.info(
                "Feed %s started for %s.",
                self.spec.marketdata.feed.kind,
                ", ".join(self.spec.symbols),
            )
            async for event in feed.stream():
                self.on_event(event)
            for builder in self.builders:
                for bar in builder.close_all():
                    self._publish_bar(bar, trace_id=None)
            self.feed_state = "finished"
            log.info(
                "Feed finished after %d events published; idling until stopped.",
                self.events_published,
            )
        except Exception:
            self.feed_state = "failed"
            raise
        finally:
            timer.cancel()
        await asyncio.Event().wait()  # stay up: metrics and status still matter after a replay

    def on_event(self, event: Quote | Trade) -> None:
        assert self._publisher is not None
        if isinstance(event, Quote):
            self._publisher.publish(
                topics.quote(event.symbol), event, ts_event_ns=event.ts_event_ns
            )
            self.published.labels("quote").inc()
            last = self._last.setdefault(event.symbol, {})
            last["bid"], last["ask"] = str(event.bid_price), str(event.ask_price)
        else:
            envelope = self._publisher.publish(
                topics.trade(event.symbol), event, ts_event_ns=event.ts_event_ns
            )
            self.published.labels("trade").inc()
            self._last.setdefault(event.symbol, {})["last"] = str(event.price)
            for index, builder in enumerate(self.builders):
                bar = builder.on_trade(event)
                if bar is not None:
                    self._publish_bar(bar, trace_id=envelope.trace_id)
                self._count_late_trades(index, builder)
        self.events_published += 1

    def _publish_bar(self, bar: Bar, trace_id: str | None) -> None:
        assert self._publisher is not None
        self._publisher.publish(
            topics.bar(bar.timeframe, bar.symbol),
            bar,
            ts_event_ns=bar.ts_close_ns,
            trace_id=trace_id,
        )
        self.published.labels("bar").inc()
        self.events_published += 1

    def _count_late_trades(self, index: int, builder: bars.BarBuilder) -> None:
        late = builder.late_trades - self._late_seen[index]
        if late:
            self._late_seen[index] = builder.late_trades
            self.dropped.labels(LATE_TRADE).inc(late)

    async def _close_due_bars(self, feed: Feed) -> None:
        while True:
            await asyncio.sleep(BAR_TIMER_INTERVAL_S)
            now_ns = feed.clock_ns()
            for builder in self.builders:
                for bar in builder.close_due(now_ns):
                    self._publish_bar(bar, trace_id=None)

    def readiness(self) -> dict[str, bool]:
        # A replay that has finished did its job: not ready would read as a fault.
        return {**super().readiness(), "feed": self.feed_state in ("running", "finished")}

    def status(self) -> dict[str, Any]:
        dropped: dict[str, int] = {}
        if isinstance(self.feed, replay.ReplayFeed):
            dropped = {reason.value: n for reason, n in self.feed.dropped.items()}
        late = sum(builder.late_trades for builder in self.builders)
        if late:
            dropped[LATE_TRADE] = late
        return {
            **super().status(),
            "feed": {"kind": self.spec.marketdata.feed.kind, "state": self.feed_state},
            "events_published": self.events_published,
            "dropped": dropped,
            "last_prices": self._last,
        }
