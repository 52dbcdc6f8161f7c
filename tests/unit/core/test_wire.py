"""The wire codec: round trips of every payload, exact decimals, each kind of malformed frame."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from components.core import events, topics, wire
from components.core.errors import CodecError

QUOTE = events.Quote(
    symbol="AAPL",
    bid_price=Decimal("189.99"),
    bid_size=Decimal(300),
    ask_price=Decimal("190.01"),
    ask_size=Decimal(200),
    ts_event_ns=1_700_000_000_000_000_000,
)
SIGNAL = events.Signal(
    signal_id="s-1",
    strategy="sma",
    symbol="AAPL",
    side=events.Side.BUY,
    quantity=Decimal(10),
    ts_event_ns=1,
    ts_origin_ns=0,
)
PAYLOADS = [
    QUOTE,
    events.Trade(symbol="AAPL", price=Decimal("190.00"), size=Decimal(5), ts_event_ns=1),
    events.Bar(
        symbol="AAPL",
        timeframe="1s",
        open=Decimal(1),
        high=Decimal(2),
        low=Decimal("0.5"),
        close=Decimal("1.5"),
        volume=Decimal(10),
        vwap=Decimal("1.25"),
        trade_count=3,
        ts_open_ns=0,
        ts_close_ns=1_000_000_000,
    ),
    events.BookSnapshot(
        symbol="AAPL",
        bids=[events.BookLevel(Decimal("1.00"), Decimal(3))],
        asks=[events.BookLevel(Decimal("1.01"), Decimal(4))],
        ts_event_ns=1,
    ),
    events.BookDelta(
        symbol="AAPL", side=events.Side.SELL, price=Decimal(1), size=Decimal(0), ts_event_ns=1
    ),
    SIGNAL,
    events.CheckSignal(signal=SIGNAL, deadline_ns=5),
    events.SignalChecked(signal_id="s-1", approved=False, reason="HALTED: trading is halted"),
    events.Order(
        client_order_id="demo-1",
        signal_id="s-1",
        symbol="AAPL",
        side=events.Side.SELL,
        quantity=Decimal(10),
        order_type=events.OrderType.LIMIT,
        limit_price=Decimal("190.5"),
        ts_event_ns=1,
        ts_origin_ns=0,
    ),
    events.OrderUpdate(
        client_order_id="demo-1",
        venue_order_id="v1",
        symbol="AAPL",
        status=events.OrderStatus.FILLED,
        filled_quantity=Decimal(10),
        avg_fill_price=Decimal("190.5"),
        ts_event_ns=2,
    ),
    events.Fill(
        fill_id="f1",
        client_order_id="demo-1",
        symbol="AAPL",
        side=events.Side.SELL,
        quantity=Decimal(10),
        price=Decimal("190.5"),
        fee=Decimal("0.05"),
        venue="simulated",
        ts_event_ns=2,
    ),
    events.RiskState(
        breaker=events.BreakerState.CLOSED,
        halted_reason="",
        cash=Decimal("100000.00"),
        equity=Decimal("100000.00"),
        realized_pnl=Decimal(0),
        positions=[
            events.Position(
                symbol="AAPL",
                quantity=Decimal(-10),
                avg_price=Decimal("190.5"),
                realized_pnl=Decimal(0),
                ts_event_ns=2,
            )
        ],
        ts_event_ns=3,
    ),
    events.Heartbeat(ts_event_ns=4),
]


def _envelope(payload: events.Payload, topic: str = "md.quote.AAPL") -> wire.Envelope:
    return wire.Envelope(topic, "marketdata", 7, 1, 2, "trace", payload)


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: type(p).__name__)
def test_decode_when_encoded_then_round_trips(payload: events.Payload) -> None:
    envelope = _envelope(payload)
    assert wire.decode(wire.encode(envelope)) == envelope


def test_encode_then_frame_starts_with_topic_for_prefix_subscriptions() -> None:
    assert wire.encode(_envelope(QUOTE)).startswith(b"md.quote.AAPL\x00")


@given(st.decimals(allow_nan=False, allow_infinity=False, places=8))
def test_decimal_when_round_tripped_then_exact(price: Decimal) -> None:
    trade = events.Trade(symbol="X", price=price, size=Decimal(1), ts_event_ns=0)
    decoded = wire.decode(wire.encode(_envelope(trade))).payload
    assert isinstance(decoded, events.Trade)
    assert decoded.price == price
    assert str(decoded.price) == str(price)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (b"md.quote.AAPL no separator", "no topic separator"),
        (b"md.quote.AAPL\x00\xc1", "bad envelope on topic b'md.quote.AAPL'"),
        (b"md.quote.AAPL\x00" + b"\x93\x01\x02\x03", "bad envelope"),
        (b"", "no topic separator"),
    ],
)
def test_decode_when_frame_malformed_then_codec_error(frame: bytes, message: str) -> None:
    with pytest.raises(CodecError, match=message):
        wire.decode(frame)


def test_decode_when_prefix_disagrees_with_envelope_then_codec_error() -> None:
    frame = wire.encode(_envelope(QUOTE))
    forged = b"md.quote.MSFT" + frame[len(b"md.quote.AAPL") :]
    with pytest.raises(CodecError, match=r"does not match envelope topic 'md\.quote\.AAPL'"):
        wire.decode(forged)


def test_decode_when_payload_tag_unknown_then_codec_error() -> None:
    import msgspec

    body = msgspec.msgpack.encode(["t", "p", 1, 1, 1, "x", {"type": "Nope", "ts_event_ns": 1}])
    with pytest.raises(CodecError, match="bad envelope"):
        wire.decode(b"t\x00" + body)


def test_decode_when_price_is_not_a_number_then_codec_error() -> None:
    import msgspec

    quote = msgspec.to_builtins(QUOTE)
    quote["bid_price"] = "not-a-price"
    body = msgspec.msgpack.encode(["t", "p", 1, 1, 1, "x", quote])
    with pytest.raises(CodecError):
        wire.decode(b"t\x00" + body)


class _SignalBeforeStops(msgspec.Struct, frozen=True, tag="Signal", kw_only=True):
    """`Signal` as peers built before stop prices and time in force knew it."""

    signal_id: str
    strategy: str
    symbol: str
    side: events.Side
    quantity: Decimal
    ts_event_ns: int
    ts_origin_ns: int
    order_type: events.OrderType = events.OrderType.MARKET
    limit_price: Decimal | None = None
    reason: str = ""


def test_signal_when_peer_predates_stop_fields_then_both_ways_decode() -> None:
    old = _SignalBeforeStops(
        **{f: getattr(SIGNAL, f) for f in _SignalBeforeStops.__struct_fields__}
    )
    decoded = msgspec.msgpack.decode(msgspec.msgpack.encode(old), type=events.Signal)
    assert decoded == SIGNAL
    assert (decoded.stop_price, decoded.time_in_force) == (None, events.TimeInForce.DAY)

    stop = msgspec.structs.replace(
        SIGNAL,
        order_type=events.OrderType.STOP,
        stop_price=Decimal("190.50"),
        time_in_force=events.TimeInForce.GTC,
    )
    envelope = wire.Envelope(topics.SIGNALS, "strategy", 1, 1, 1, "t", stop)
    assert wire.decode(wire.encode(envelope)).payload == stop
    # An older peer reads the rest and ignores what it does not know.
    as_old = msgspec.msgpack.decode(msgspec.msgpack.encode(stop), type=_SignalBeforeStops)
    assert (as_old.order_type, as_old.signal_id) == (events.OrderType.STOP, "s-1")
