"""`codec`: encode + decode of one wire envelope carrying a `Quote`, in microseconds.

Every message on the bus is encoded once by its publisher and decoded once by each subscriber, so
this is the per-message cost the codec adds to every hop. Envelopes are built beforehand (their
construction is the publisher's business, not the codec's) with realistic Decimal prices that
differ from one message to the next, and the median over several repeats is reported.
"""

from __future__ import annotations

import random
import statistics
import time
from decimal import Decimal

from benchmarks.results import Result
from components.core import topics, wire
from components.core.events import Quote

TARGET_US = 10.0
MESSAGES = 20_000
REPEATS = 7


def sample_envelopes(count: int, symbol: str = "AAPL", seed: int = 7) -> list[wire.Envelope]:
    """`count` quote envelopes for `symbol`, prices a random walk in cents around 187."""
    rng = random.Random(seed)
    topic = topics.quote(symbol)
    mid_cents = 18_700
    now = time.time_ns()
    envelopes = []
    for seq in range(1, count + 1):
        mid_cents += rng.choice((-2, -1, 0, 1, 2))
        ts_ns = now + seq * 1_000_000
        quote = Quote(
            symbol=symbol,
            bid_price=Decimal(mid_cents - 1).scaleb(-2),
            bid_size=Decimal(rng.randrange(1, 40) * 100),
            ask_price=Decimal(mid_cents + 1).scaleb(-2),
            ask_size=Decimal(rng.randrange(1, 40) * 100),
            ts_event_ns=ts_ns,
        )
        envelopes.append(
            wire.Envelope(
                topic=topic,
                publisher="marketdata",
                seq=seq,
                ts_event_ns=ts_ns,
                ts_send_ns=ts_ns + 20_000,
                trace_id=f"{rng.getrandbits(64):016x}",
                payload=quote,
            )
        )
    return envelopes


def _per_message_us(step, items: list) -> float:  # type: ignore[type-arg]
    started = time.perf_counter_ns()
    for item in items:
        step(item)
    return (time.perf_counter_ns() - started) / len(items) / 1000


def run() -> list[Result]:
    envelopes = sample_envelopes(MESSAGES)
    frames = [wire.encode(envelope) for envelope in envelopes]
    assert wire.decode(frames[0]) == envelopes[0], "the codec does not round-trip"

    def round_trip(envelope: wire.Envelope) -> None:
        wire.decode(wire.encode(envelope))

    _per_message_us(round_trip, envelopes[:2000])  # warm-up
    both: list[float] = []
    encode: list[float] = []
    decode: list[float] = []
    for _ in range(REPEATS):  # interleaved, so that a burst of noise touches all three alike
        both.append(_per_message_us(round_trip, envelopes))
        encode.append(_per_message_us(wire.encode, envelopes))
        decode.append(_per_message_us(wire.decode, frames))
    median_us = statistics.median(both)
    encode_us, decode_us = statistics.median(encode), statistics.median(decode)
    size = round(statistics.mean(len(frame) for frame in frames))
    return [
        Result(
            name="codec",
            target=f"< {TARGET_US:g} µs/msg",
            measured=f"{median_us:.2f} µs/msg",
            meets=median_us < TARGET_US,
            note=(
                f"Quote envelope, {size} B frame: encode {encode_us:.2f} + decode "
                f"{decode_us:.2f} µs; median of {REPEATS} x {MESSAGES:,} msgs"
            ),
            values={
                "round_trip_us": median_us,
                "encode_us": encode_us,
                "decode_us": decode_us,
                "frame_bytes": size,
                "messages": MESSAGES,
                "repeats": REPEATS,
            },
        )
    ]
