"""Alpaca stream v2 frames: each message type decoded exactly, RFC-3339 with nanoseconds, control
messages, and every kind of bad input dropped with its counted reason while the rest survives."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from components.core.events import Bar, Quote, Trade
from components.marketdata.alpaca import protocol
from components.marketdata.validation import DropReason, Drops

T0_NS = 1_709_303_400_000_000_000  # 2024-03-01T14:30:00Z
TRADE = {"T": "t", "S": "AAPL", "i": 52983525029461, "x": "V", "p": 189.42, "s": 100,
         "c": ["@"], "t": "2024-03-01T14:30:00.123456789Z", "z": "C"}  # fmt: skip
QUOTE = {"T": "q", "S": "AAPL", "bx": "V", "bp": 189.41, "bs": 6, "ax": "V", "ap": 189.43,
         "as": 5, "c": ["R"], "t": "2024-03-01T14:30:00.5Z", "z": "C"}  # fmt: skip
BAR = {"T": "b", "S": "AAPL", "o": 189.4, "h": 189.5, "l": 189.3, "c": 189.45, "v": 1200,
       "t": "2024-03-01T14:30:00Z", "n": 12, "vw": 189.4312}  # fmt: skip


def _decode(*messages: object) -> tuple[protocol.Decoder, list, list]:
    decoder = protocol.Decoder(Drops())
    controls, events = decoder.decode(json.dumps(list(messages)).encode())
    return decoder, controls, events


def test_decode_when_trade_quote_bar_then_exact_events() -> None:
    decoder, controls, events = _decode(TRADE, QUOTE, BAR)
    assert controls == []
    assert events == [
        Trade(symbol="AAPL", price=Decimal("189.42"), size=Decimal(100),
              ts_event_ns=T0_NS + 123_456_789),
        Quote(symbol="AAPL", bid_price=Decimal("189.41"), bid_size=Decimal(6),
              ask_price=Decimal("189.43"), ask_size=Decimal(5), ts_event_ns=T0_NS + 500_000_000),
        Bar(symbol="AAPL", timeframe="1m", open=Decimal("189.4"), high=Decimal("189.5"),
            low=Decimal("189.3"), close=Decimal("189.45"), volume=Decimal(1200),
            vwap=Decimal("189.4312"), trade_count=12, ts_open_ns=T0_NS,
            ts_close_ns=T0_NS + 60_000_000_000),
    ]  # fmt: skip
    assert decoder.drops.total == 0


def test_decode_when_control_messages_then_returned_in_order() -> None:
    _, controls, events = _decode(
        {"T": "success", "msg": "connected"},
        {"T": "error", "code": 406, "msg": "connection limit exceeded"},
        {"T": "subscription", "trades": ["AAPL"], "quotes": [], "bars": ["*"]},
    )
    assert events == []
    assert controls == [
        protocol.Success(msg="connected"),
        protocol.Error(code=406, msg="connection limit exceeded"),
        protocol.Subscription(trades=["AAPL"], bars=["*"]),
    ]
    assert not controls[1].fatal
    assert protocol.Error(code=402).fatal


def test_decode_when_status_correction_cancel_daily_then_counted_as_notices() -> None:
    decoder, _, events = _decode(
        {"T": "s", "S": "AAPL", "sc": "H", "sm": "Trading Halt", "rc": "T12", "rm": "", "t": "x"},
        {"T": "c", "S": "AAPL", "x": "V", "oi": 1, "op": 1.0, "os": 1, "ci": 2, "cp": 1.1,
         "cs": 1, "t": "2024-03-01T14:30:00Z", "z": "C"},
        {"T": "x", "S": "AAPL", "i": 1, "x": "V", "p": 1.0, "s": 1, "a": "C", "t": "x", "z": "C"},
        {**BAR, "T": "d"},
    )  # fmt: skip
    assert events == []
    assert decoder.notices == {"s": 1, "c": 1, "x": 1, "d": 1}
    assert decoder.drops.total == 0


def test_decode_when_updated_bar_then_dropped_as_revision() -> None:
    decoder, _, events = _decode({**BAR, "T": "u"})
    assert events == [] and decoder.drops.counts == {DropReason.BAR_REVISION: 1}


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"not json", DropReason.MALFORMED),
        (b'{"T":"t"}', DropReason.MALFORMED),  # not an array
        (json.dumps([{**TRADE, "p": "abc"}]).encode(), DropReason.MALFORMED),
        (json.dumps([{**TRADE, "t": "2024-03-01 14:30"}]).encode(), DropReason.MALFORMED),
        (json.dumps([{**TRADE, "t": "2024-03-01T14:30:00.1234567890Z"}]).encode(),
         DropReason.MALFORMED),
        (json.dumps([{k: v for k, v in TRADE.items() if k != "S"}]).encode(), DropReason.MALFORMED),
        (json.dumps([{"T": "zz", "S": "AAPL"}]).encode(), DropReason.UNKNOWN_TYPE),
        (json.dumps([42]).encode(), DropReason.MALFORMED),
    ],
)  # fmt: skip
def test_decode_when_bad_then_dropped_with_reason(frame: bytes, reason: DropReason) -> None:
    decoder = protocol.Decoder(Drops())
    assert decoder.decode(frame) == ([], [])
    assert decoder.drops.counts == {reason: 1}


def test_decode_when_one_element_bad_then_others_kept() -> None:
    decoder, _, events = _decode(TRADE, {**TRADE, "s": "x"}, {"T": "zz"}, QUOTE)
    assert [type(e) for e in events] == [Trade, Quote]
    assert decoder.drops.counts == {DropReason.MALFORMED: 1, DropReason.UNKNOWN_TYPE: 1}


def test_decode_when_frame_oversize_then_dropped_unread() -> None:
    decoder = protocol.Decoder(Drops(), max_frame_bytes=1024)
    frame = json.dumps([TRADE] * 20).encode()
    assert len(frame) > 1024
    assert decoder.decode(frame) == ([], [])
    assert decoder.drops.counts == {DropReason.OVERSIZE_FRAME: 1}


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("2024-03-01T14:30:00Z", T0_NS),
        ("2024-03-01T14:30:00.000000001Z", T0_NS + 1),
        ("2024-03-01T14:30:00.1Z", T0_NS + 100_000_000),
        ("2024-03-01T09:30:00.25-05:00", T0_NS + 250_000_000),
        ("2024-03-01T15:30:00+01:00", T0_NS),
    ],
)
def test_parse_time_ns_when_rfc3339_then_exact(text: str, expected_ns: int) -> None:
    assert protocol.parse_time_ns(text) == expected_ns


@pytest.mark.parametrize(
    "text",
    ["", "2024-03-01", "2024-03-01T14:30:00", "2024-03-01T14:30:00.Z", "2024-03-01T14:30:00+0100",
     "2024-13-01T14:30:00Z", "2024-03-01T14:30:00.12x4Z", "2024-03-01T14:30:00.1234567x9Z",
     "\uff12\uff10\uff12\uff14-03-01T14:30:00Z"],
)  # fmt: skip
def test_parse_time_ns_when_not_rfc3339_then_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        protocol.parse_time_ns(text)
