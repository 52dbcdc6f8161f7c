"""Replays a file of trades, quotes and bars as a live feed: a CSV file (below) or a Parquet file
in the layout of `marketdata.parquet` (one kind per file, as `tradingsystem data fetch` writes).

A CSV file has a header row and these columns, in any order:

    ts          event time: ISO-8601 (`2024-03-01T14:30:00.125Z`; no offset means UTC) or an
                integer count of nanoseconds since the Unix epoch
    symbol      a symbol of the system (others are dropped)
    kind        `trade` or `quote`
    price, size                                  trades only (size > 0)
    bid_price, bid_size, ask_price, ask_size     quotes only (sizes >= 0, bid < ask)

and, only if the file holds bars (kind `bar`), `timeframe` (`60s`), `open`, `high`, `low`,
`close`, `volume`, `vwap`, `trade_count`; a bar's `ts` is its open. Columns that do not apply to
a row's kind are left empty. A bad row is skipped, logged once with
its line number and counted under a `DropReason`: a replay never stops for one bad line. Time may
repeat but not go backwards.

Events keep the file's timestamps, so bars built from a replay are the same at any speed. `speed`
scales the gaps between rows (1.0 is real time, 0 is as fast as possible). When looping, each pass
is shifted to start one second after the previous one ended, so event time never goes backwards.
"""

from __future__ import annotations

import asyncio
import collections
import csv
import datetime as dt
import logging
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from decimal import Decimal
from pathlib import Path

import msgspec

from components.core import money
from components.core.errors import InvalidPriceError
from components.core.events import Bar, Quote, Trade
from components.marketdata import parquet
from components.marketdata.validation import DropReason, content_error

log = logging.getLogger(__name__)

COLUMNS = (
    "ts",
    "symbol",
    "kind",
    "price",
    "size",
    "bid_price",
    "bid_size",
    "ask_price",
    "ask_size",
)
BAR_COLUMNS = ("timeframe", "open", "high", "low", "close", "volume", "vwap", "trade_count")
LOOP_GAP_NS = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_YIELD_EVERY = 256  # at speed 0, let the event loop run this often


class _BadRow(ValueError):
    def __init__(self, reason: DropReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def parse_ts_ns(text: str) -> int:
    """Nanoseconds since the epoch from an integer count of them or an ISO-8601 time."""
    text = text.strip()
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise _BadRow(DropReason.MALFORMED, f"ts {text!r} is not ISO-8601 nor ns") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    # Integer arithmetic on the timedelta: a float timestamp would lose nanoseconds.
    return (moment - _EPOCH) // dt.timedelta(microseconds=1) * 1000


def _field(row: dict[str, str], name: str) -> str:
    value = (row.get(name) or "").strip()
    if not value:
        raise _BadRow(DropReason.MALFORMED, f"{name} is empty")
    return value


def _price(row: dict[str, str], name: str) -> Decimal:
    try:
        return money.to_price(_field(row, name))
    except InvalidPriceError as exc:
        raise _BadRow(DropReason.INVALID_PRICE, f"{name}: {exc}") from exc


def _size(row: dict[str, str], name: str, *, positive: bool) -> Decimal:
    try:
        size = money.to_size(_field(row, name))
    except InvalidPriceError as exc:
        raise _BadRow(DropReason.INVALID_SIZE, f"{name}: {exc}") from exc
    if positive and size == 0:
        raise _BadRow(DropReason.INVALID_SIZE, f"{name}: must be > 0 (was {row[name]!r})")
    return size


def _timeframe_ns(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
    text = text.strip()
    number, unit = text[:-1], text[-1:]
    if not number.isdigit() or unit not in units or int(number) == 0:
        raise _BadRow(DropReason.MALFORMED, f"timeframe {text!r} is not like 60s, 1m, 1h or 1d")
    return int(number) * units[unit] * 1_000_000_000


def _bar(row: dict[str, str], symbol: str, ts_ns: int) -> Bar:
    timeframe = _field(row, "timeframe")
    try:
        count = int(_field(row, "trade_count"))
    except ValueError as exc:
        raise _BadRow(DropReason.MALFORMED, f"trade_count {row['trade_count']!r}") from exc
    bar = Bar(
        symbol=symbol,
        timeframe=timeframe,
        open=_price(row, "open"),
        high=_price(row, "high"),
        low=_price(row, "low"),
        close=_price(row, "close"),
        volume=_size(row, "volume", positive=False),
        vwap=_price(row, "vwap"),
        trade_count=count,
        ts_open_ns=ts_ns,
        ts_close_ns=ts_ns + _timeframe_ns(timeframe),
    )
    problem = content_error(bar)
    if problem is not None:
        raise _BadRow(*problem)
    return bar


def parse_row(row: dict[str, str], symbols: Collection[str] | None) -> Quote | Trade | Bar:
    """One CSV row as an event; `_BadRow` says why it is not one."""
    if None in row or None in row.values():
        raise _BadRow(DropReason.MALFORMED, "wrong number of columns")
    ts_ns = parse_ts_ns(_field(row, "ts"))
    symbol = _field(row, "symbol")
    if symbols is not None and symbol not in symbols:
        raise _BadRow(DropReason.UNKNOWN_SYMBOL, f"symbol {symbol!r} is not traded")
    kind = _field(row, "kind").lower()
    if kind == "trade":
        price = _price(row, "price")
        return Trade(
            symbol=symbol,
            price=price,
            size=_size(row, "size", positive=True),
            ts_event_ns=ts_ns,
        )
    if kind == "quote":
        bid, ask = _price(row, "bid_price"), _price(row, "ask_price")
        bid_size = _size(row, "bid_size", positive=False)
        ask_size = _size(row, "ask_size", positive=False)
        if bid >= ask:
            raise _BadRow(DropReason.CROSSED_QUOTE, f"bid {bid} is not below ask {ask}")
        return Quote(
            symbol=symbol,
            bid_price=bid,
            bid_size=bid_size,
            ask_price=ask,
            ask_size=ask_size,
            ts_event_ns=ts_ns,
        )
    if kind == "bar":
        return _bar(row, symbol, ts_ns)
    raise _BadRow(DropReason.MALFORMED, f"kind {kind!r} is not trade, quote or bar")


Event = Quote | Trade | Bar


def event_time(event: Event) -> int:
    """When it happened: a bar by its open, which is the time its row carries."""
    return event.ts_open_ns if isinstance(event, Bar) else event.ts_event_ns


def shifted(event: Event, offset_ns: int) -> Event:
    if isinstance(event, Bar):
        return msgspec.structs.replace(
            event,
            ts_open_ns=event.ts_open_ns + offset_ns,
            ts_close_ns=event.ts_close_ns + offset_ns,
        )
    return msgspec.structs.replace(event, ts_event_ns=event.ts_event_ns + offset_ns)


class ReplayFeed:
    """Events from a CSV or Parquet (`.parquet`) file, paced by `speed`; `dropped` counts
    skipped rows by reason.

    Raises `OSError` if the file cannot be read and `ValueError` if its header lacks a column
    (or a Parquet file's columns hold no known kind).

    `on_drop` is called with the reason of each skipped row (the service counts them in
    Prometheus). `symbols=None` accepts every symbol.
    """

    def __init__(
        self,
        path: str | Path,
        symbols: Collection[str] | None = None,
        *,
        speed: float = 1.0,
        loop: bool = False,
        rebase: bool = False,
        on_drop: Callable[[DropReason], None] | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be >= 0 (was {speed})")
        self.path = Path(path)
        self.symbols = frozenset(symbols) if symbols is not None else None
        self.speed = speed
        self.loop = loop
        self.rebase = rebase
        self.name = f"replay:{self.path.name}"
        self.dropped: collections.Counter[DropReason] = collections.Counter()
        self.passes = 0
        self._on_drop = on_drop
        self._horizon_ns = 0
        self._anchor: tuple[int, float] | None = None  # (event ns, loop time) where pacing began
        self.is_parquet = self.path.suffix.lower() in (".parquet", ".pq")
        if self.is_parquet:  # fail now, not at the first event
            parquet.rows(self.path)
        else:
            with self.path.open(newline="") as file:
                self._check_header(next(csv.reader(file), None))

    def _check_header(self, header: Sequence[str] | None) -> None:
        missing = [column for column in COLUMNS if column not in (header or ())]
        if missing:
            raise ValueError(f"header lacks column(s) {', '.join(missing)}")

    def _rows(self) -> Iterator[tuple[int, dict[str, str]]]:
        """(line or row number, row as text) of the file."""
        if self.is_parquet:
            _, rows = parquet.rows(self.path)
            for number, row in enumerate(rows, start=1):
                yield number, row
            return
        with self.path.open(newline="") as file:
            reader = csv.DictReader(file)
            self._check_header(reader.fieldnames)
            for row in reader:
                yield reader.line_num, row

    def events(self, offset_ns: int = 0, *, log_drops: bool = True) -> Iterator[Event]:
        """One pass over the file, event times shifted by `offset_ns`. Same file, same events."""
        last_ts_ns: int | None = None
        for line, row in self._rows():
            try:
                event = parse_row(row, self.symbols)
                if last_ts_ns is not None and event_time(event) < last_ts_ns:
                    raise _BadRow(
                        DropReason.TIME_BACKWARDS, f"ts {row['ts']} is before the previous row's"
                    )
            except _BadRow as bad:
                self._drop(bad, line, log_drops)
                continue
            last_ts_ns = event_time(event)
            yield shifted(event, offset_ns) if offset_ns else event

    def _drop(self, bad: _BadRow, line: int, log_drops: bool) -> None:
        self.dropped[bad.reason] += 1
        if self._on_drop is not None:
            self._on_drop(bad.reason)
        if log_drops:
            log.warning("Skipped line %d of %s (%s): %s.", line, self.path, bad.reason.value, bad)

    async def stream(self) -> AsyncIterator[Event]:
        """The file's events paced by `speed`, once or forever (`loop`). Ends after one pass
        without `loop`, or at once if the file holds no valid event."""
        loop = asyncio.get_running_loop()
        offset_ns = 0
        shift_ns: int | None = None  # rebase: from file time to wall-clock time
        while True:
            first_ns: int | None = None
            start_s = 0.0
            last_ns = 0
            for count, event in enumerate(self.events(offset_ns, log_drops=self.passes == 0)):
                if self.rebase:
                    # A backup for a live feed: its first event happens now, the rest follow.
                    if shift_ns is None:
                        shift_ns = time.time_ns() - event.ts_event_ns
                    event = msgspec.structs.replace(event, ts_event_ns=event.ts_event_ns + shift_ns)
                ts_ns = event.ts_event_ns
                if first_ns is None:
                    first_ns, start_s = ts_ns, loop.time()
                    self._anchor = (first_ns, start_s)
                # Until this event is out, event time must not pass it: see `clock_ns`.
                self._horizon_ns = ts_ns
                if self.speed > 0:
                    due_s = start_s + (ts_ns - first_ns) / 1e9 / self.speed
                    delay_s = due_s - loop.time()
                    if delay_s > 0:
                        await asyncio.sleep(delay_s)
                elif count % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                last_ns = ts_ns
                yield event
            self.passes += 1
            if first_ns is None or not self.loop:
                return
            offset_ns += last_ns - first_ns + LOOP_GAP_NS

    def clock_ns(self) -> int:
        """Event time now, on the file's clock: how far the replay has got.

        Capped at the next event not yet emitted, so that a timer closing bars by this clock
        never closes a bar that a pending trade still belongs to.
        """
        if self._anchor is None or self.speed == 0:
            return self._horizon_ns
        anchor_ns, anchor_s = self._anchor
        elapsed_ns = int((asyncio.get_running_loop().time() - anchor_s) * self.speed * 1e9)
        return min(anchor_ns + elapsed_ns, self._horizon_ns)
