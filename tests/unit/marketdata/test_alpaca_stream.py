"""The Alpaca stream client against a local server speaking the documented protocol: auth and
subscribe, batches, resubscribe after a drop, each error code's reaction (stop, back off, back off
long), a silent socket, malformed frames, and a reconnect storm paced by the backoff."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from components.core.config import AlpacaFeedConfig
from components.core.events import Quote, Trade
from components.marketdata.alpaca.stream import AlpacaFeed
from components.marketdata.connection import Backoff, ConnectionState
from components.marketdata.validation import DropReason, Drops
from components.runtime.credentials import AlpacaCredentials
from tests.fakes import alpaca_stream
from tests.fakes.alpaca_stream import KEY, SECRET, FakeAlpacaStream

GOOD_KEYS = AlpacaCredentials.from_env({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": SECRET})
TRADE = {"T": "t", "S": "AAPL", "i": 1, "x": "V", "p": 189.42, "s": 100, "c": ["@"],
         "t": "2024-03-01T14:30:00.000000001Z", "z": "C"}  # fmt: skip
QUOTE = {"T": "q", "S": "MSFT", "bx": "V", "bp": 410.1, "bs": 2, "ax": "V", "ap": 410.2, "as": 3,
         "c": ["R"], "t": "2024-03-01T14:30:00.5Z", "z": "C"}  # fmt: skip


class Recorder:
    """Runs a feed's stream in a task, keeps its events, and records the backoff's sleeps."""

    def __init__(self, fake: FakeAlpacaStream, keys: AlpacaCredentials = GOOD_KEYS, **cfg) -> None:
        config = AlpacaFeedConfig(url=fake.url, **{"silence_timeout_s": 5, **cfg})
        self.sleeps: list[float] = []
        self.drops = Drops()
        self.feed = AlpacaFeed(
            config,
            ["AAPL", "MSFT"],
            keys,
            self.drops,
            backoff=Backoff(1, 30, rng=random.Random(3)),
            sleep=self._sleep,
        )
        self.events: list[object] = []
        self.states: list[ConnectionState] = []
        self.feed.connection.on_change(lambda _old, new: self.states.append(new))
        self.reasons: list[str] = []  # why each reconnect happened
        self.feed.connection.on_change(
            lambda _old, new: (
                new is ConnectionState.RECONNECTING
                and self.reasons.append(self.feed.connection.reason)
            )
        )

    async def _sleep(self, delay_s: float) -> None:
        self.sleeps.append(delay_s)
        await asyncio.sleep(0)

    async def _run(self) -> None:
        async for event in self.feed.stream():
            self.events.append(event)


@contextlib.asynccontextmanager
async def _streaming(fake: FakeAlpacaStream, **kwargs) -> AsyncIterator[Recorder]:
    recorder = Recorder(fake, **kwargs)
    task = asyncio.create_task(recorder._run())
    recorder.task = task  # type: ignore[attr-defined]
    try:
        yield recorder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.005)


def _subscribed(recorder: Recorder) -> Callable[[], bool]:
    return lambda: recorder.feed.connection.state is ConnectionState.SUBSCRIBED


async def test_stream_when_server_healthy_then_auths_subscribes_and_yields_batches(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    async with alpaca_stream.running() as fake, _streaming(fake) as rec:
        await _until(_subscribed(rec))
        assert fake.received == [
            {"action": "auth", "key": KEY, "secret": SECRET},
            {"action": "subscribe", "trades": ["AAPL", "MSFT"], "quotes": ["AAPL", "MSFT"]},
        ]
        await fake.push([TRADE, QUOTE, {**TRADE, "S": "IBM"}])
        await _until(lambda: len(rec.events) == 2)
    assert rec.events == [
        Trade(symbol="AAPL", price=Decimal("189.42"), size=Decimal(100),
              ts_event_ns=1_709_303_400_000_000_001),
        Quote(symbol="MSFT", bid_price=Decimal("410.1"), bid_size=Decimal(2),
              ask_price=Decimal("410.2"), ask_size=Decimal(3),
              ts_event_ns=1_709_303_400_500_000_000),
    ]  # fmt: skip
    assert rec.states[:4] == ["disconnected", "connecting", "connected", "subscribed"]
    assert SECRET not in caplog.text


async def test_stream_when_dropped_then_reconnects_after_backoff_and_resubscribes() -> None:
    async with alpaca_stream.running() as fake, _streaming(fake) as rec:
        await _until(_subscribed(rec))
        await fake.drop_all()
        await _until(lambda: len(fake.connections) == 2 and bool(fake.subscribed))
        await fake.push([TRADE])
        await _until(lambda: len(rec.events) == 1)
    assert rec.sleeps and 0.8 <= rec.sleeps[0] <= 1.0
    assert [m["action"] for m in fake.received] == ["auth", "subscribe"] * 2
    assert rec.feed.connection.reconnects == 1


async def test_stream_when_auth_fails_then_stops_failed_without_retrying() -> None:
    wrong = AlpacaCredentials.from_env({"APCA_API_KEY_ID": KEY, "APCA_API_SECRET_KEY": "nope"})
    async with alpaca_stream.running() as fake, _streaming(fake, keys=wrong) as rec:
        await asyncio.wait_for(rec.task, 5)  # type: ignore[attr-defined]
        await asyncio.sleep(0.05)
        assert len(fake.connections) == 1
    assert rec.feed.connection.state is ConnectionState.FAILED
    assert "402" in rec.feed.connection.failure and "auth failed" in rec.feed.connection.failure
    assert rec.sleeps == []


@pytest.mark.parametrize("code", [400, 405, 409])
async def test_stream_when_fatal_error_frame_then_failed(code: int) -> None:
    async with alpaca_stream.running() as fake, _streaming(fake) as rec:
        fake.fail_next(code)
        await asyncio.wait_for(rec.task, 5)  # type: ignore[attr-defined]
    assert rec.feed.connection.state is ConnectionState.FAILED
    assert str(code) in rec.feed.connection.failure
    assert len(fake.connections) == 1


@pytest.mark.parametrize("code", [401, 404, 407, 500])
async def test_stream_when_transient_error_frame_then_backs_off_and_recovers(code: int) -> None:
    async with alpaca_stream.running() as fake, _streaming(fake) as rec:
        fake.fail_next(code)
        await _until(lambda: len(fake.connections) == 2 and bool(fake.subscribed))
    assert len(rec.sleeps) == 1 and rec.sleeps[0] <= 1.0
    assert rec.feed.last_error is not None and rec.feed.last_error.code == code


async def test_stream_when_connection_limit_then_backs_off_long() -> None:
    async with alpaca_stream.running() as fake:
        fake.fail_next(406)
        async with _streaming(fake, long_backoff_s=60) as rec:
            await _until(_subscribed(rec))
    assert len(rec.sleeps) == 1 and 60 <= rec.sleeps[0] <= 72


async def test_stream_when_second_connection_then_server_refuses_406_and_client_waits_long() -> (
    None
):
    async with alpaca_stream.running(max_connections=1) as fake, _streaming(fake) as first:
        await _until(_subscribed(first))
        async with _streaming(fake, long_backoff_s=120) as second:
            await _until(lambda: len(second.sleeps) >= 1)
            assert second.feed.last_error is not None
            assert second.feed.last_error.code == 406
            assert min(second.sleeps) >= 120
        assert first.feed.connection.state is ConnectionState.SUBSCRIBED


async def test_stream_when_handshake_429_then_long_backoff_and_401_then_failed() -> None:
    async with alpaca_stream.running() as fake:
        fake.refuse_next(429)
        async with _streaming(fake, long_backoff_s=60) as rec:
            await _until(_subscribed(rec))
        assert len(rec.sleeps) == 1 and rec.sleeps[0] >= 60
        fake.refuse_next(401)
        async with _streaming(fake) as rec:
            await asyncio.wait_for(rec.task, 5)  # type: ignore[attr-defined]
        assert rec.feed.connection.state is ConnectionState.FAILED


async def test_stream_when_socket_silent_then_treated_as_dead_and_reconnects() -> None:
    async with alpaca_stream.running() as fake, _streaming(fake, silence_timeout_s=0.2) as rec:
        await _until(_subscribed(rec))
        await _until(lambda: len(fake.connections) >= 2, timeout_s=5)
    assert rec.feed.connection.reconnects >= 1


async def test_stream_when_muted_with_pongs_then_silence_detected_and_reconnects() -> None:
    """The mute fault: the socket stays open and answers pings (client heartbeat every 0.05 s,
    server pings too), yet no data frame comes. Control frames must not reset the silence clock:
    the session ends within about `silence_timeout_s`, for the reason `silence`."""
    async with (
        alpaca_stream.running(ping_interval_s=0.05) as fake,
        _streaming(fake, silence_timeout_s=0.4, heartbeat_s=0.05) as rec,
    ):
        await _until(_subscribed(rec))
        await fake.push([TRADE])
        await _until(lambda: len(rec.events) == 1)
        fake.mute()
        await _until(lambda: len(fake.connections) >= 2, timeout_s=5)
        assert rec.reasons[0] == "silence"
        fake.mute(False)
        await _until(_subscribed(rec))
        await fake.push([QUOTE])
        await _until(lambda: len(rec.events) == 2)


async def test_stream_when_data_keeps_coming_then_no_silence_reconnect() -> None:
    async with (
        alpaca_stream.running(ping_interval_s=0.05) as fake,
        _streaming(fake, silence_timeout_s=0.4, heartbeat_s=0.05) as rec,
    ):
        await _until(_subscribed(rec))
        for n in range(8):
            await fake.push([{**TRADE, "i": n}])
            await _until(lambda n=n: len(rec.events) == n + 1)
            await asyncio.sleep(0.15)
    assert len(fake.connections) == 1 and rec.feed.connection.reconnects == 0


async def test_stream_when_muted_outside_trading_hours_then_silence_is_not_a_fault() -> None:
    """No data is expected while the symbols do not trade (here: hours that never contain now):
    a quiet socket at night is no reason to reconnect or fail over."""
    async with alpaca_stream.running(ping_interval_s=0.05) as fake:
        hours = "13:00-14:00" if time.gmtime().tm_hour < 12 else "01:00-02:00"  # not now
        async with _streaming(
            fake,
            silence_timeout_s=0.2,
            heartbeat_s=0.05,
            trading_hours=hours,
            trading_timezone="UTC",
        ) as rec:
            await _until(_subscribed(rec))
            fake.mute()
            await asyncio.sleep(0.8)
            assert rec.feed.connection.subscribed
    assert len(fake.connections) == 1 and rec.feed.connection.reconnects == 0


async def test_stream_when_pings_unanswered_then_heartbeat_drops_and_reconnects() -> None:
    """Data can stop without the socket closing; WebSocket pings find a peer that stopped too."""
    async with alpaca_stream.running() as fake:
        fake.answer_pings = False
        async with _streaming(fake, heartbeat_s=0.2, silence_timeout_s=60) as rec:
            await _until(lambda: len(fake.connections) >= 2, timeout_s=5)
    assert rec.feed.connection.reconnects >= 1


async def test_stream_when_server_never_greets_then_auth_timeout_and_retry() -> None:
    async with alpaca_stream.running() as fake:
        fake.greet = False
        async with _streaming(fake, auth_timeout_s=0.2) as rec:
            await _until(lambda: len(rec.sleeps) >= 2)
    assert rec.feed.connection.state is not ConnectionState.SUBSCRIBED
    assert len(fake.connections) >= 2


async def test_stream_when_malformed_frames_then_counted_and_stream_continues() -> None:
    async with alpaca_stream.running() as fake, _streaming(fake) as rec:
        await _until(_subscribed(rec))
        await fake.send_raw("{{{ not json")
        await fake.send_raw('[{"T":"t","S":"AAPL","p":"NaN?"}]')
        await fake.send_raw('[{"T":"wat"}]')
        await fake.push([TRADE])
        await _until(lambda: len(rec.events) == 1)
    assert rec.drops.counts == {DropReason.MALFORMED: 2, DropReason.UNKNOWN_TYPE: 1}
    assert len(fake.connections) == 1


async def test_stream_when_reconnect_storm_then_attempts_paced_by_doubling_backoff() -> None:
    """Ten refused handshakes in a row: ten waits, each about double the last, capped at 30 s,
    and exactly one connection attempt per wait (no tight loop)."""
    async with alpaca_stream.running() as fake:
        fake.refuse_next(*[503] * 10)
        async with _streaming(fake) as rec:
            await _until(_subscribed(rec))
    nominal = [1, 2, 4, 8, 16, 30, 30, 30, 30, 30]
    assert len(rec.sleeps) == 10
    for slept, expected in zip(rec.sleeps, nominal, strict=True):
        assert 0.8 * expected <= slept <= expected
    assert len(fake.connections) == 1  # only the eleventh attempt got past the handshake


async def test_stream_when_server_drops_each_session_at_once_then_backoff_still_doubles() -> None:
    """A server that accepts, subscribes and drops at once is not a healthy session: the backoff
    is not reset, so a storm of short sessions is paced like refused ones."""
    async with alpaca_stream.running() as fake:
        fake.drop_after_subscribe = 6
        async with _streaming(fake) as rec:
            await _until(lambda: len(fake.connections) == 7 and bool(fake.subscribed))
    nominal = [1, 2, 4, 8, 16, 30]
    assert len(rec.sleeps) == 6
    for slept, expected in zip(rec.sleeps, nominal, strict=True):
        assert 0.8 * expected <= slept <= expected
    assert [m["action"] for m in fake.received].count("subscribe") == 7
