"""The one wire envelope and its codec.

A message on the bus is a single ZMQ frame: the topic in UTF-8, a NUL byte, then the envelope in
msgpack (msgspec, chosen for speed: encode + decode of a quote is a few microseconds). ZMQ matches
subscriptions on the frame's leading bytes, so the topic prefix is what subscribers filter on; the
envelope repeats the topic so that a decoded message is complete on its own. One frame per message
also makes the broker's frame counters message counters.
"""

from __future__ import annotations

import msgspec

from components.core.errors import CodecError
from components.core.events import Payload

SEPARATOR = b"\x00"


class Envelope(msgspec.Struct, frozen=True, array_like=True, gc=False):
    topic: str
    publisher: str
    seq: int  # from 1, per publisher and topic, so that subscribers to any prefix see gaps
    ts_event_ns: int
    ts_send_ns: int
    trace_id: str  # follows a cause to its effects: tick → signal → order → fill
    payload: Payload


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Envelope)


def encode(envelope: Envelope) -> bytes:
    return b"".join((envelope.topic.encode(), SEPARATOR, _encoder.encode(envelope)))


def decode(frame: bytes) -> Envelope:
    """Decode one frame; anything malformed is a `CodecError` naming what is wrong."""
    cut = frame.find(SEPARATOR, 0, 256)
    if cut < 0:
        raise CodecError("frame has no topic separator")
    try:
        envelope = _decoder.decode(memoryview(frame)[cut + 1 :])
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        # msgspec raises UnicodeDecodeError, not DecodeError, for a string that is not UTF-8.
        raise CodecError(f"bad envelope on topic {frame[:cut]!r}: {exc}") from exc
    if envelope.topic.encode() != frame[:cut]:
        raise CodecError(
            f"topic prefix {frame[:cut]!r} does not match envelope topic {envelope.topic!r}"
        )
    return envelope
