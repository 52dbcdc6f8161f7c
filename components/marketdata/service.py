"""The `marketdata` component: runs the configured feed, validates every event, and publishes the
quotes and trades, and the bars built from the trades, on the broker.

Topics: `md.quote.<SYM>`, `md.trade.<SYM>` and `md.bar.<N>s.<SYM>` for each of
`marketdata.bar_intervals_s` (plus `md.bar.1m.<SYM>` for Alpaca's own minute bars when subscribed),
and `md.book.<SYM>` for each book snapshot or delta the symbol's `books.OrderBook` accepted.
Each publisher numbers its messages per topic, so subscribers detect and count gaps
(`bus_sequence_gaps`). A bar closed by a trade carries that trade's trace id, so a signal (and the
order after it) can be followed back to the tick that caused it; a bar closed by the timer starts
a trace of its own.

Every event passes `validation.Validator` before anything else sees it; a dropped one is counted
in `marketdata_events_dropped{reason}` and logged (bounded). A network feed's connection state is
the `marketdata_feed_state` gauge and a `/ready` check; with a backup feed configured, `/ready`
also passes while the backup is serving. Every session that ends is counted in
`marketdata_feed_disconnects{feed,reason}`; `silence` is a socket that delivered no data frame
for `silence_timeout_s` during trading hours, however many pongs it sent.

When a replay without `loop` reaches the end of its file, the component closes its open bars and
idles: it stays up, reports `finished` in `/status`, and keeps serving its metrics. A network feed
that FAILED (e.g. bad credentials) likewise idles, unready, with the reason in `/status`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol

import prometheus_client as prom

from components.core import topics
from components.core.config import BackupFeedConfig, FeedConfig
from components.core.errors import ConfigError
from components.core.events import Bar, BookDelta, BookSnapshot, Quote, Trade
from components.marketdata import bars, books, replay, store, synthetic
from components.marketdata.alpaca.stream import AlpacaFeed
from components.marketdata.connection import Connection, ConnectionState
from components.marketdata.failover import FailoverFeed, Source
from components.marketdata.validation import DropReason, Drops, Validator
from components.runtime.bus import Publisher
from components.runtime.component import Component
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)

BAR_TIMER_INTERVAL_S = 0.1
ARCHIVE_FLUSH_TICKS = 600  # closed bars reach their Parquet files at least once a minute
LATE_TRADE = DropReason.LATE_TRADE.value  # a dropped-events reason of the bar builders

FeedState = Literal["starting", "running", "finished", "failed"]
# Receive time minus event time, in seconds: a live feed's lag spans sub-millisecond to seconds.
LAG_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
GAP_BUCKETS_S = (0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)


Event = Quote | Trade | Bar | BookSnapshot | BookDelta


class Feed(Protocol):
    name: str

    def stream(self) -> AsyncIterator[Event]: ...

    def clock_ns(self) -> int:
        """Event time now, by the feed's own clock: what closes bars when nothing trades."""
        ...


class MarketDataMetrics:
    def __init__(self, registry: prom.CollectorRegistry) -> None:
        self.received = prom.Counter(
            "marketdata_events_received",
            "Events delivered by the feeds, before validation, by type and source.",
            ["type", "source"],
            registry=registry,
        )
        self.published = prom.Counter(
            "marketdata_events_published",
            "Market-data events published, by kind (quote, trade, bar).",
            ["kind"],
            registry=registry,
        )
        self.dropped = prom.Counter(
            "marketdata_events_dropped",
            "Market-data input dropped before publication, by reason.",
            ["reason"],
            registry=registry,
        )
        for reason in DropReason:
            self.dropped.labels(reason.value)  # zeros from the start: rates work on the first
        self.feed_state = prom.Enum(
            "marketdata_feed_state",
            "Connection state of the network feed.",
            ["feed"],
            states=[state.value for state in ConnectionState],
            registry=registry,
        )
        self.reconnects = prom.Counter(
            "marketdata_feed_reconnects",
            "Times the network feed lost its connection and began to reconnect.",
            ["feed"],
            registry=registry,
        )
        self.disconnects = prom.Counter(
            "marketdata_feed_disconnects",
            "Sessions of the network feed that ended, by reason (silence: no data frame for "
            "silence_timeout_s while the symbols trade, pongs or not).",
            ["feed", "reason"],
            registry=registry,
        )
        self.gap = prom.Histogram(
            "marketdata_feed_gap_seconds",
            "How long the network feed delivered nothing, from losing to regaining a subscription.",
            ["feed"],
            buckets=GAP_BUCKETS_S,
            registry=registry,
        )
        self.lag = prom.Histogram(
            "marketdata_feed_lag_seconds",
            "Receive time minus event time of live events, by source.",
            ["source"],
            buckets=LAG_BUCKETS_S,
            registry=registry,
        )
        self.notices = prom.Counter(
            "marketdata_provider_notices",
            "Provider messages read but not published (status, correction, cancel, daily bar).",
            ["type"],
            registry=registry,
        )
        self.active_feed = prom.Gauge(
            "marketdata_active_feed",
            "1 for the feed whose events are published now (primary or backup).",
            ["feed"],
            registry=registry,
        )
        self.failovers = prom.Counter(
            "marketdata_failovers",
            "Switches between primary and backup feed, by the feed switched to.",
            ["to"],
            registry=registry,
        )


class MarketData(Component):
    name = "marketdata"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = MarketDataMetrics(self.registry)
        self.drops = Drops(lambda reason: self.metrics.dropped.labels(reason.value).inc())
        config = self.spec.marketdata
        self.validator = Validator(self.spec.symbols, self.drops, max_future_s=config.max_future_s)
        self.builders = [bars.BarBuilder(n) for n in config.bar_intervals_s]
        self.books = books.Books()
        self.store = store.MarketDataStore(config.trade_history, config.bar_history)
        self.archive = store.BarArchive(config.bars_dir) if config.bars_dir else None
        self.feed_state: FeedState = "starting"
        self.events_published = 0
        self._late_seen = [0] * len(self.builders)
        self._received: dict[tuple[type, str], Any] = {}
        self._lag: dict[str, Any] = {}
        self._published = {
            kind: self.metrics.published.labels(kind) for kind in ("quote", "trade", "bar", "book")
        }
        self._publisher: Publisher | None = None
        self._lost_at_s: float | None = None
        self._notices_seen: dict[str, int] = {}
        # Built here, not in run(): an unreadable replay file or missing keys are config errors
        # (exit 2, restarting will not help).
        self.feed: Feed = self.build_feed(config.feed)
        self.live = config.feed.kind != "replay"

    # --- building feeds ------------------------------------------------------------------------

    def build_feed(self, config: FeedConfig) -> Feed:
        if config.kind != "alpaca":
            return self._local_feed(config, "marketdata.feed")
        primary = self._alpaca_feed(config)
        self._watch_connection(primary.connection)
        if config.backup is None:
            return primary
        backup = self._backup_feed(config.backup)
        feed = FailoverFeed(
            primary,
            backup,
            config.backup.takeover_after_s,
            on_switch=self._on_switch,
        )
        self.metrics.active_feed.labels(primary.name).set(1)
        self.metrics.active_feed.labels(backup.name).set(0)
        return feed

    def _local_feed(
        self, config: FeedConfig | BackupFeedConfig, where: str, *, rebase: bool = False
    ) -> Feed:
        if config.kind == "synthetic":
            return synthetic.SyntheticFeed(config.synthetic, self.spec.symbols)
        assert config.replay is not None  # the config models guarantee it
        try:
            return replay.ReplayFeed(
                config.replay.path,
                self.spec.symbols,
                speed=config.replay.speed,
                loop=config.replay.loop,
                rebase=rebase,
                on_drop=lambda reason: self.metrics.dropped.labels(reason.value).inc(),
            )
        except (OSError, ValueError) as exc:
            why = f"cannot read it: {exc.strerror}" if isinstance(exc, OSError) else str(exc)
            raise ConfigError(
                "marketdata", [f"{where}.replay.path: {config.replay.path!r}: {why}"]
            ) from exc

    def _alpaca_feed(
        self, config: FeedConfig | BackupFeedConfig, name: str | None = None
    ) -> AlpacaFeed:
        credentials = AlpacaCredentials.from_env()
        return AlpacaFeed(config.alpaca, self.spec.symbols, credentials, self.drops, name=name)

    def _backup_feed(self, config: BackupFeedConfig) -> Source:
        if config.kind == "alpaca":
            return self._alpaca_feed(config, name=f"alpaca-{config.alpaca.source}-backup")
        # A backup stands in for a live feed: a replay is moved to the wall clock.
        return self._local_feed(config, "marketdata.feed.backup", rebase=True)

    def _watch_connection(self, connection: Connection) -> None:
        gauge = self.metrics.feed_state.labels(connection.name)
        reconnects = self.metrics.reconnects.labels(connection.name)
        gap = self.metrics.gap.labels(connection.name)
        for reason in ("silence", "closed"):  # zeros from the start: alerts can rate() them
            self.metrics.disconnects.labels(connection.name, reason)

        def changed(old: ConnectionState, new: ConnectionState) -> None:
            gauge.state(new.value)
            if new in (ConnectionState.RECONNECTING, ConnectionState.FAILED) and old is not new:
                self.metrics.disconnects.labels(connection.name, connection.reason or "other").inc()
            if new is ConnectionState.RECONNECTING and old is not new:
                reconnects.inc()
            if old is ConnectionState.SUBSCRIBED and new is not old:
                self._lost_at_s = time.monotonic()
            elif new is ConnectionState.SUBSCRIBED and self._lost_at_s is not None:
                gap.observe(time.monotonic() - self._lost_at_s)
                self._lost_at_s = None

        connection.on_change(changed)

    def _on_switch(self, to: str) -> None:
        self.metrics.failovers.labels(to).inc()
        feed: Any = self.feed
        for name in (feed.primary.name, feed.backup.name):
            self.metrics.active_feed.labels(name).set(1 if name == to else 0)

    # --- running -------------------------------------------------------------------------------

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
            if self.archive is not None:
                self.archive.flush()
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

    def _source(self) -> str:
        feed: Any = self.feed
        return getattr(feed, "active", feed.name)

    def on_event(self, event: Event) -> None:
        # The hot path: metric children are looked up once per label set (prometheus_client's
        # `labels()` costs microseconds), display strings are made only when /status asks.
        assert self._publisher is not None
        now_ns = time.time_ns()
        source = self._source()
        key = (type(event), source)
        received = self._received.get(key)
        if received is None:
            kind = type(event).__name__.lower()
            received = self._received[key] = self.metrics.received.labels(kind, source)
        received.inc()
        if not self.validator.accept(event, now_ns):
            return
        if self.live:
            ts_ns = event.ts_open_ns if isinstance(event, Bar) else event.ts_event_ns
            lag = self._lag.get(source)
            if lag is None:
                lag = self._lag[source] = self.metrics.lag.labels(source)
            lag.observe(max(0, now_ns - ts_ns) / 1e9)
        published = self._published
        if isinstance(event, Quote):
            self._publisher.publish(
                topics.quote(event.symbol), event, ts_event_ns=event.ts_event_ns
            )
            published["quote"].inc()
            self.store.on_quote(event)
        elif isinstance(event, Trade):
            envelope = self._publisher.publish(
                topics.trade(event.symbol), event, ts_event_ns=event.ts_event_ns
            )
            published["trade"].inc()
            self.store.on_trade(event)
            for index, builder in enumerate(self.builders):
                bar = builder.on_trade(event)
                if bar is not None:
                    self._publish_bar(bar, trace_id=envelope.trace_id)
                if builder.late_trades != self._late_seen[index]:
                    self._count_late_trades(index, builder)
        elif isinstance(event, Bar):  # a provider's own bar, published as it came
            self._publish_bar(event, trace_id=None)
            return
        else:
            reason = self.books.apply(event)
            if reason is not None:
                self.drops(reason, f"{type(event).__name__} of {event.symbol}")
                return
            self._publisher.publish(topics.book(event.symbol), event, ts_event_ns=event.ts_event_ns)
            published["book"].inc()
        self.events_published += 1

    def _count_notices(self) -> None:
        decoder = getattr(getattr(self.feed, "primary", self.feed), "decoder", None)
        if decoder is None:
            return
        for kind, count in decoder.notices.items():
            seen = self._notices_seen.get(kind, 0)
            if count > seen:
                self.metrics.notices.labels(kind).inc(count - seen)
                self._notices_seen[kind] = count

    def _publish_bar(self, bar: Bar, trace_id: str | None) -> None:
        assert self._publisher is not None
        self._publisher.publish(
            topics.bar(bar.timeframe, bar.symbol),
            bar,
            ts_event_ns=bar.ts_close_ns,
            trace_id=trace_id,
        )
        self._published["bar"].inc()
        self.events_published += 1
        self.store.on_bar(bar)
        if self.archive is not None:
            self.archive.add(bar)

    def _count_late_trades(self, index: int, builder: bars.BarBuilder) -> None:
        late = builder.late_trades - self._late_seen[index]
        if late:
            self._late_seen[index] = builder.late_trades
            self.drops.counts[DropReason.LATE_TRADE] += late
            self.metrics.dropped.labels(LATE_TRADE).inc(late)

    async def _close_due_bars(self, feed: Feed) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(BAR_TIMER_INTERVAL_S)
            now_ns = feed.clock_ns()
            for builder in self.builders:
                for bar in builder.close_due(now_ns):
                    self._publish_bar(bar, trace_id=None)
            self._count_notices()
            ticks += 1
            if self.archive is not None and ticks % ARCHIVE_FLUSH_TICKS == 0:
                self.archive.flush()

    async def close(self) -> None:
        if self.archive is not None:
            self.archive.flush()

    # --- reporting -----------------------------------------------------------------------------

    def _connection(self) -> Connection | None:
        return getattr(self.feed, "connection", None)

    def _backup_serving(self) -> bool:
        feed: Any = self.feed
        if not getattr(feed, "on_backup", False):
            return False
        backup_connection = getattr(feed.backup, "connection", None)
        return backup_connection is None or backup_connection.delivering

    def readiness(self) -> dict[str, bool]:
        # A replay that has finished did its job: not ready would read as a fault.
        checks = {**super().readiness(), "feed": self.feed_state in ("running", "finished")}
        connection = self._connection()
        if connection is not None:
            # Subscribed is not enough: a mute socket stays subscribed (see `connection`).
            checks["feed.connection"] = connection.delivering or self._backup_serving()
        return checks

    def _last_prices(self) -> dict[str, dict[str, str]]:
        prices: dict[str, dict[str, str]] = {}
        for symbol in self.spec.symbols:
            quote, trade = self.store.last_quote(symbol), self.store.last_trade(symbol)
            shown: dict[str, str] = {}
            if quote is not None:
                shown["bid"], shown["ask"] = str(quote.bid_price), str(quote.ask_price)
            if trade is not None:
                shown["last"] = str(trade.price)
            if shown:
                prices[symbol] = shown
        return prices

    def status(self) -> dict[str, Any]:
        self._count_notices()
        dropped = {reason.value: n for reason, n in self.drops.counts.items() if n}
        if isinstance(self.feed, replay.ReplayFeed):
            for reason, n in self.feed.dropped.items():
                dropped[reason.value] = dropped.get(reason.value, 0) + n
        feed: dict[str, Any] = {"kind": self.spec.marketdata.feed.kind, "state": self.feed_state}
        connection = self._connection()
        if connection is not None:
            feed["connection"] = {
                "name": connection.name,
                "state": connection.state.value,
                "reconnects": connection.reconnects,
                "failure": connection.failure,
            }
            feed["source"] = self._source()
        return {
            **super().status(),
            "feed": feed,
            "events_published": self.events_published,
            "dropped": dropped,
            "last_prices": self._last_prices(),
            "books": {symbol: _book_status(book) for symbol, book in self.books.books.items()},
        }


def _book_status(book: books.OrderBook) -> dict[str, Any]:
    bid, ask, imbalance = book.best_bid, book.best_ask, book.imbalance()
    return {
        "bid": f"{bid.size} @ {bid.price}" if bid else None,
        "ask": f"{ask.size} @ {ask.price}" if ask else None,
        "imbalance": str(imbalance) if imbalance is not None else None,
        "levels": len(book),
    }
