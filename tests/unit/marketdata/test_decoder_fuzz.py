"""Every decoder on generated input: Alpaca stream frames, the wire envelope and replay CSV files.
No exception escapes, and every input is accounted for: each message of a frame is a control, an
event, a notice or a counted drop; each event then passes the validator or is a counted drop;
each CSV row is an event or a counted drop; a wire frame decodes or raises `CodecError` only.

Hypothesis draws, per example, the seed of a generator that mutates valid inputs (fields replaced by
hostile values, removed, retyped; bytes flipped; frames cut) and sometimes makes raw noise, then
builds `PER_EXAMPLE` inputs from it. `EXAMPLES * PER_EXAMPLE` = 10,000 inputs per decoder per
run, derandomized so that CI sees the same cases, in a few seconds (hypothesis' per-example
drawing costs milliseconds per input; a seeded generator, microseconds)."""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.core import wire
from components.core.errors import CodecError
from components.core.events import Bar, Quote, Trade
from components.marketdata import replay
from components.marketdata.alpaca import protocol
from components.marketdata.validation import Drops, Validator

EXAMPLES, PER_EXAMPLE = 1_000, 10
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
seeds = st.integers(0, 2**64).map(random.Random)

HOSTILE: list[Any] = [
    None, True, 0, -1, 2**64, -(2**70), 1e308, -0.0, 1e-320, "", "NaN", "Infinity", "-1", "0",
    "1e400", "x" * 300, "\u0000", "\ud7ff", [], {}, [1, 2], {"T": "t"}, "2024-03-01T14:30:00Z",
    "2024-02-30T25:61:61Z", "2024-03-01T14:30:00.1234567891Z", "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+23:59", 189.42, 0.0001, 100,
]  # fmt: skip


def _mutate(rng: random.Random, value: Any) -> Any:
    if isinstance(value, dict) and value and rng.random() < 0.7:
        value = dict(value)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*value, "T", "S", "zz"])
            if rng.random() < 0.3:
                value.pop(key, None)
            else:
                value[key] = rng.choice(HOSTILE) if rng.random() < 0.8 else _mutate(rng, value)
        return value
    return rng.choice(HOSTILE)


# --- Alpaca frames ------------------------------------------------------------------------------

TEMPLATES: list[dict[str, Any]] = [
    {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 189.42, "s": 100, "c": ["@"],
     "t": "2024-03-01T14:30:00.123456789Z", "z": "C"},
    {"T": "q", "S": "MSFT", "bx": "V", "bp": 410.1, "bs": 2, "ax": "V", "ap": 410.2, "as": 3,
     "c": ["R"], "t": "2024-03-01T14:30:00.5Z", "z": "C"},
    {"T": "b", "S": "AAPL", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100,
     "t": "2024-03-01T14:30:00Z", "n": 3, "vw": 1.2},
    {"T": "u", "S": "AAPL", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100,
     "t": "2024-03-01T14:30:00Z", "n": 3, "vw": 1.2},
    {"T": "d", "S": "AAPL", "o": 1.0, "h": 2.0, "l": 0.5, "c": 1.5, "v": 100,
     "t": "2024-03-01T14:30:00Z", "n": 3, "vw": 1.2},
    {"T": "s", "S": "AAPL", "sc": "H", "sm": "Halt", "rc": "T1", "rm": "", "t": "x", "z": "C"},
    {"T": "c", "S": "AAPL", "x": "V", "oi": 1, "op": 1.0, "os": 1, "ci": 2, "cp": 1.1, "cs": 1,
     "t": "2024-03-01T14:30:00Z", "z": "C"},
    {"T": "x", "S": "AAPL", "i": 1, "x": "V", "p": 1.0, "s": 1, "a": "C", "t": "x", "z": "C"},
    {"T": "success", "msg": "connected"},
    {"T": "error", "code": 402, "msg": "auth failed"},
    {"T": "subscription", "trades": ["AAPL"], "quotes": [], "bars": []},
]  # fmt: skip


def alpaca_frame(rng: random.Random) -> bytes:
    roll = rng.random()
    if roll < 0.1:
        return rng.randbytes(rng.randint(0, 64))
    messages = [
        _mutate(rng, rng.choice(TEMPLATES)) if rng.random() < 0.5 else rng.choice(TEMPLATES)
        for _ in range(rng.randint(0, 6))
    ]
    frame = json.dumps(messages).encode()
    if roll > 0.9:  # cut or flip bytes of a valid frame
        frame = bytearray(frame)
        if rng.random() < 0.5:
            del frame[rng.randint(0, len(frame)) :]
        else:
            frame[rng.randrange(len(frame))] = rng.randrange(256)
        frame = bytes(frame)
    return frame


@FUZZ
@given(rng=seeds)
def test_alpaca_decoder_when_fuzzed_then_no_exception_and_every_message_accounted(
    rng: random.Random,
) -> None:
    drops = Drops()  # one per example: its log bound keeps the run fast
    decoder = protocol.Decoder(drops, max_frame_bytes=2048)
    validator = Validator({"AAPL", "MSFT"}, drops)
    for _ in range(PER_EXAMPLE):
        frame = alpaca_frame(rng)
        dropped, noticed = drops.total, sum(decoder.notices.values())
        controls, events = decoder.decode(frame)
        noticed = sum(decoder.notices.values()) - noticed
        dropped = drops.total - dropped
        try:
            # An array of anything: its elements are the messages, readable or not.
            parsed = msgspec.json.decode(frame, type=list[msgspec.Raw])
        except (msgspec.DecodeError, UnicodeDecodeError):
            parsed = None
        if isinstance(parsed, list) and len(frame) <= 2048:
            assert len(controls) + len(events) + noticed + dropped == len(parsed)
        else:
            assert (controls, events) == ([], []) and dropped == 1
        assert all(isinstance(event, Trade | Quote | Bar) for event in events)
        before = drops.total
        accepted = sum(validator.accept(event, now_ns=1_709_303_400 * 10**9) for event in events)
        assert accepted + drops.total - before == len(events)


# --- the wire envelope --------------------------------------------------------------------------

GOOD_FRAME = wire.encode(
    wire.Envelope(
        topic="md.quote.AAPL",
        publisher="marketdata",
        seq=1,
        ts_event_ns=1,
        ts_send_ns=2,
        trace_id="abc",
        payload=Quote(
            symbol="AAPL",
            bid_price=Decimal("1.01"),
            bid_size=Decimal(1),
            ask_price=Decimal("1.02"),
            ask_size=Decimal(1),
            ts_event_ns=1,
        ),
    )
)


def wire_frame(rng: random.Random) -> bytes:
    choice = rng.randrange(4)
    if choice == 0:
        return rng.randbytes(rng.randint(0, 200))
    frame = bytearray(GOOD_FRAME)
    if choice == 1:
        for _ in range(rng.randint(1, 4)):
            frame[rng.randrange(len(frame))] = rng.randrange(256)
    elif choice == 2:
        del frame[rng.randrange(len(frame)) :]
    else:  # another topic in front of a valid envelope
        frame = bytearray(rng.randbytes(rng.randint(0, 20)).replace(b"\0", b"")) + frame[13:]
    return bytes(frame)


@FUZZ
@given(rng=seeds)
def test_wire_decode_when_fuzzed_then_envelope_or_codec_error_only(rng: random.Random) -> None:
    for _ in range(PER_EXAMPLE):
        try:
            envelope = wire.decode(wire_frame(rng))
        except CodecError:
            continue
        assert wire.decode(wire.encode(envelope)) == envelope


def test_wire_decode_when_string_not_utf8_then_codec_error() -> None:
    """Found by the fuzzer: msgspec raises UnicodeDecodeError, which escaped as not a CodecError."""
    frame = GOOD_FRAME.replace(b"\xa3abc", b"\xa3\x80bc")
    try:
        wire.decode(frame)
    except CodecError as exc:
        assert "bad envelope" in str(exc)
    else:
        raise AssertionError("decoded a frame holding invalid UTF-8")


# --- replay CSV files ---------------------------------------------------------------------------

CELLS = ["", "AAPL", "MSFT", "ZZZ", "trade", "quote", "TRADE", "NaN", "-1", "0", "1.5", "100",
         "1e3", "2024-03-01T14:30:00Z", "2024-03-01T14:30:00.5+01:00", "1709303400000000000",
         "yesterday", "inf", "\u00e9", "1,5", '"', "\n", " 2 "]  # fmt: skip
GOOD_ROWS = [
    ["2024-03-01T14:30:00Z", "AAPL", "quote", "", "", "10.01", "1", "10.02", "1"],
    ["2024-03-01T14:30:01Z", "AAPL", "trade", "10.01", "5", "", "", "", ""],
]
FUZZ_DIR = Path(tempfile.mkdtemp(prefix="replay-fuzz-"))


def replay_row(rng: random.Random) -> list[str]:
    row = list(rng.choice(GOOD_ROWS))
    for _ in range(rng.randint(0, 3)):
        row[rng.randrange(len(row))] = rng.choice(CELLS)
    if rng.random() < 0.1:
        del row[rng.randrange(len(row)) :]
    elif rng.random() < 0.1:
        row.append(rng.choice(CELLS))
    return row


@FUZZ
@given(rng=seeds)
def test_replay_when_fuzzed_then_every_row_event_or_counted_drop(rng: random.Random) -> None:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(replay.COLUMNS)
    writer.writerows(replay_row(rng) for _ in range(PER_EXAMPLE))
    path = FUZZ_DIR / "fuzz.csv"
    path.write_text(text.getvalue())
    feed = replay.ReplayFeed(path, {"AAPL", "MSFT"})
    events = list(feed.events(log_drops=False))
    rows = [row for row in list(csv.reader(io.StringIO(text.getvalue())))[1:] if row]
    assert len(events) + sum(feed.dropped.values()) == len(rows)
    assert all(isinstance(event, Trade | Quote) for event in events)
