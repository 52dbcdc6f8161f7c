"""Alpaca's market-data stream v2, as data: the messages it sends and how they become our events.

Every frame from the server is a JSON array of messages, each tagged by `T`:

    success       {"T":"success","msg":"connected" | "authenticated"}
    error         {"T":"error","code":402,"msg":"auth failed"}
    subscription  {"T":"subscription","trades":[...],"quotes":[...],"bars":[...],...}
    t  trade      S symbol, i id, x exchange, p price, s size, c conditions, t time, z tape
    q  quote      S, bx bp bs (bid exchange, price, size), ax ap as (ask), c, t, z
    b  bar        S, o h l c (prices), v volume, t start of the minute, n trades, vw VWAP
    u  bar update a minute bar revised by late trades (same fields as b)
    d  daily bar  the day's running bar (same fields as b)
    s  status     trading status (halts, resumes)
    c  correction a trade corrected after the fact
    x  cancel     a trade cancelled after the fact

Times are RFC-3339 with up to nine fractional digits. Prices are JSON numbers; msgspec decodes
them straight into `Decimal`, exactly as written, never through a float.

`Decoder.decode(frame)` turns one frame into control messages and our events, dropping (and
counting, through `Drops`) whatever it cannot read. It never raises on input: a well-formed batch
takes one msgspec pass; a batch with one bad element falls back to decoding element by element,
so the bad one is dropped and the others survive.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from decimal import Decimal
from typing import Any

import msgspec

from components.core.events import Bar, Quote, Trade
from components.marketdata.validation import DropReason, Drops

MINUTE_NS = 60 * 1_000_000_000
MINUTE_BAR = "1m"  # Alpaca's own bars; the bars we build are named by seconds (`60s`)

# Error codes of the stream, per Alpaca's documentation, and what each means for us.
ERRORS: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    408: "v2 not enabled",
    409: "insufficient subscription",
    410: "invalid subscribe action for this feed",
    429: "too many requests",
    500: "internal error",
}
# Retrying will not help: our credentials, our plan or our own messages are wrong. Stop and say so.
FATAL_ERRORS = frozenset({400, 402, 405, 408, 409, 410})
# The server wants fewer connections or requests from us: wait long before the next try.
LONG_BACKOFF_ERRORS = frozenset({406, 429})


class _Msg(msgspec.Struct, tag_field="T", frozen=True, gc=False):
    pass


class Success(_Msg, tag="success"):
    msg: str


class Error(_Msg, tag="error"):
    code: int
    msg: str = ""

    @property
    def fatal(self) -> bool:
        return self.code in FATAL_ERRORS

    def describe(self) -> str:
        return f"error {self.code} ({self.msg or ERRORS.get(self.code, 'unknown')})"


class Subscription(_Msg, tag="subscription"):
    trades: list[str] = []
    quotes: list[str] = []
    bars: list[str] = []
    updatedBars: list[str] = []
    dailyBars: list[str] = []
    statuses: list[str] = []
    lulds: list[str] = []
    corrections: list[str] = []
    cancelErrors: list[str] = []


# Only the fields we use: msgspec skips the others (id, exchange, conditions, tape) unread,
# which halves the decoding time of a message.
class _Trade(_Msg, tag="t"):
    S: str
    p: Decimal
    s: Decimal
    t: str


class _Quote(_Msg, tag="q"):
    S: str
    bp: Decimal
    bs: Decimal
    ap: Decimal
    as_: Decimal = msgspec.field(name="as")
    t: str


class _Bar(_Msg, tag="b"):
    S: str
    o: Decimal
    h: Decimal
    l: Decimal  # noqa: E741 (Alpaca's field name)
    c: Decimal
    v: Decimal
    t: str
    n: int
    vw: Decimal


class _UpdatedBar(_Bar, tag="u"):
    pass


class _DailyBar(_Bar, tag="d"):
    pass


class Notice(_Msg):
    """A message we read but do not publish: its type is counted (and logged for c and x)."""

    S: str = ""


class _Status(Notice, tag="s"):
    pass


class _Correction(Notice, tag="c"):
    pass


class _Cancel(Notice, tag="x"):
    pass


Control = Success | Error | Subscription
_Any = (
    Success
    | Error
    | Subscription
    | _Trade
    | _Quote
    | _Bar
    | _UpdatedBar
    | _DailyBar
    | _Status
    | _Correction
    | _Cancel
)
_KNOWN_TYPES = frozenset({"success", "error", "subscription", *"tqbudscx"})

# msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
_UNREADABLE = (msgspec.DecodeError, UnicodeDecodeError)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DIGITS = frozenset("0123456789")


def parse_time_ns(text: str) -> int:
    """Nanoseconds since the epoch from RFC-3339 (`2024-03-01T14:30:00.123456789Z`, or an
    offset such as `-05:00`). Raises `ValueError` for anything else."""
    if len(text) == 30 and text[19] == "." and text[29] == "Z" and text.isascii():
        # Alpaca's usual form, nine digits and Z: the fast path.
        fraction = text[20:29]
        if fraction.isdigit() and text[10] in "Tt":
            return _seconds(text[:19]) * 1_000_000_000 + int(fraction)
    if len(text) < 20 or not text.isascii() or text[10] not in "Tt":
        raise ValueError(f"not an RFC-3339 time: {text[:40]!r}")
    rest = text[19:]
    fraction_ns = 0
    if rest[0] == ".":
        end = 1
        while end < len(rest) and rest[end] in _DIGITS:
            end += 1
        digits = rest[1:end]
        if not 1 <= len(digits) <= 9:
            raise ValueError(f"bad fraction of a second in {text[:40]!r}")
        fraction_ns = int(digits.ljust(9, "0"))
        rest = rest[end:]
    if rest in ("Z", "z"):
        offset_s = 0
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and _DIGITS.issuperset(rest[1:3]) \
            and _DIGITS.issuperset(rest[4:]):  # fmt: skip
        offset_s = (int(rest[1:3]) * 3600 + int(rest[4:6]) * 60) * (1 if rest[0] == "+" else -1)
    else:
        raise ValueError(f"bad time zone in {text[:40]!r}")
    seconds = _seconds(text[:19])
    return (seconds - offset_s) * 1_000_000_000 + fraction_ns


@functools.lru_cache(maxsize=64)
def _seconds(stamp: str) -> int:
    """Whole seconds of `YYYY-MM-DDTHH:MM:SS`, cached: the messages of a batch share a few."""
    if not _DIGITS.issuperset(stamp[:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16]):
        raise ValueError(f"not an RFC-3339 time: {stamp!r}")
    moment = dt.datetime.fromisoformat(stamp).replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // dt.timedelta(seconds=1)


class Decoder:
    """Frames to `(controls, events)`; drops are counted in `drops`, notices in `notices`."""

    def __init__(self, drops: Drops, *, max_frame_bytes: int = 1 << 20) -> None:
        self.drops = drops
        self.max_frame_bytes = max_frame_bytes
        self.notices: collections.Counter[str] = collections.Counter()
        self._batch = msgspec.json.Decoder(list[_Any])
        self._raw_batch = msgspec.json.Decoder(list[msgspec.Raw])
        self._one = msgspec.json.Decoder(_Any)
        self._any = msgspec.json.Decoder(Any)

    def decode(self, frame: bytes | str) -> tuple[list[Control], list[Trade | Quote | Bar]]:
        controls: list[Control] = []
        events: list[Trade | Quote | Bar] = []
        if len(frame) > self.max_frame_bytes:
            self.drops(
                DropReason.OVERSIZE_FRAME,
                f"frame of {len(frame)} bytes exceeds {self.max_frame_bytes}",
            )
            return controls, events
        try:
            messages: list[Any] = self._batch.decode(frame)
        except _UNREADABLE:
            messages = self._one_by_one(frame)
        for message in messages:
            if isinstance(message, Success | Error | Subscription):
                controls.append(message)
            else:
                event = self._event(message)
                if event is not None:
                    events.append(event)
        return controls, events

    def _one_by_one(self, frame: bytes | str) -> list[Any]:
        try:
            raws = self._raw_batch.decode(frame)
        except _UNREADABLE as exc:
            self.drops(DropReason.MALFORMED, f"frame is not a JSON array: {exc}")
            return []
        messages = []
        for raw in raws:
            try:
                messages.append(self._one.decode(raw))
            except _UNREADABLE as exc:
                self._drop_element(raw, exc)
        return messages

    def _drop_element(self, raw: msgspec.Raw, exc: Exception) -> None:
        try:
            kind = self._any.decode(raw).get("T")
        except (*_UNREADABLE, AttributeError):
            kind = None
        if isinstance(kind, str) and kind not in _KNOWN_TYPES:
            self.drops(DropReason.UNKNOWN_TYPE, f"message type {kind[:20]!r}")
        else:
            self.drops(DropReason.MALFORMED, f"message of type {kind!r}: {exc}")

    def _event(self, message: Any) -> Trade | Quote | Bar | None:
        try:
            if isinstance(message, _Trade):
                return Trade(
                    symbol=message.S,
                    price=message.p,
                    size=message.s,
                    ts_event_ns=parse_time_ns(message.t),
                )
            if isinstance(message, _Quote):
                return Quote(
                    symbol=message.S,
                    bid_price=message.bp,
                    bid_size=message.bs,
                    ask_price=message.ap,
                    ask_size=message.as_,
                    ts_event_ns=parse_time_ns(message.t),
                )
            if isinstance(message, _UpdatedBar):
                self.drops(DropReason.BAR_REVISION, f"update of the {message.t} bar of {message.S}")
                return None
            if isinstance(message, _DailyBar):
                self.notices["d"] += 1  # the day's running bar: not a closed bar
                return None
            if isinstance(message, _Bar):
                ts_ns = parse_time_ns(message.t)
                return Bar(
                    symbol=message.S,
                    timeframe=MINUTE_BAR,
                    open=message.o,
                    high=message.h,
                    low=message.l,
                    close=message.c,
                    volume=message.v,
                    vwap=message.vw,
                    trade_count=message.n,
                    ts_open_ns=ts_ns,
                    ts_close_ns=ts_ns + MINUTE_NS,
                )
        except ValueError as exc:
            self.drops(DropReason.MALFORMED, str(exc))
            return None
        assert isinstance(message, Notice)
        self.notices[message.__struct_config__.tag] += 1  # type: ignore[index]
        return None
