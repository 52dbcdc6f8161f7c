"""The WebSocket client of Alpaca's market-data stream v2: connect, authenticate, subscribe, read,
and reconnect when anything goes wrong, at the pace of `Backoff`.

One session is: the server's `connected` greeting, our `auth` (key and secret from the
environment, never logged) answered by `authenticated`, our `subscribe` answered by the
`subscription` reply, all within `auth_timeout_s`; then data until the connection ends. What
ends it decides what happens next:

- an error frame of `protocol.FATAL_ERRORS` (402 auth failed, 409 insufficient subscription, ...):
  retrying cannot help, so the feed moves to FAILED, says why, and stops (`/ready` fails; a backup
  feed, if configured, takes over);
- 406 connection limit exceeded, or 429 (as a frame or as the HTTP status of the handshake):
  reconnect after at least `long_backoff_s`;
- any other error frame, a refused or dropped connection, a handshake or auth that does not
  finish in time, or a silent socket: reconnect after the next backoff delay, and subscribe again.

Silence is measured from the last *data* frame (one that carries a trade, quote or bar), never
from control frames: these sockets are known to stay open, answering every ping, while they
deliver nothing, and aiohttp restarts its receive timeout at each pong. So the wait for the next
frame has its own deadline, `silence_timeout_s` after the last data; when it passes while the
symbols are expected to trade (`trading_hours`), the session ends for the reason `silence` and the
connection counts as down since the last data (so that the failover takes over). Outside those
hours a quiet socket is left alone. WebSocket pings every `heartbeat_s` (aiohttp's heartbeat)
catch a peer that stopped answering altogether.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

import aiohttp
import msgspec

from components.core.config import AlpacaFeedConfig
from components.core.events import Bar, Quote, Trade
from components.marketdata import hours
from components.marketdata.alpaca import protocol
from components.marketdata.connection import Backoff, Connection, ConnectionState
from components.marketdata.validation import Drops
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
# The largest frame aiohttp accepts; bigger than any limit of ours, so that an oversize frame is
# dropped and counted by the decoder instead of tearing the connection down.
_TRANSPORT_MAX_BYTES = 64 << 20


class SessionEnded(Exception):
    """A session ended; `retry_after_s` is the least wait before the next (None: do not retry);
    `reason` a short code for metrics: silence, closed, error_frame, fatal, limited, transport,
    handshake, timeout."""

    def __init__(
        self, why: str, *, retry_after_s: float | None = 0.0, reason: str = "closed"
    ) -> None:
        super().__init__(why)
        self.retry_after_s = retry_after_s
        self.reason = reason


class AlpacaFeed:
    """Trades, quotes and (optionally) minute bars of `symbols`, for as long as it can get them.

    `sleep` and `clock` are injectable so that tests can run the reconnect schedule without
    waiting it out; `backoff` likewise (seeded jitter); `wall_clock` decides trading hours."""

    def __init__(
        self,
        config: AlpacaFeedConfig,
        symbols: Sequence[str],
        credentials: AlpacaCredentials,
        drops: Drops,
        *,
        name: str | None = None,
        backoff: Backoff | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.symbols = list(symbols)
        self.name = name or f"alpaca-{config.source}"
        self.connection = Connection(self.name, clock)
        self.decoder = protocol.Decoder(drops, max_frame_bytes=config.max_frame_bytes)
        self.backoff = backoff or Backoff(config.backoff_initial_s, config.backoff_max_s)
        self.sessions = 0
        self.last_error: protocol.Error | None = None
        self._credentials = credentials
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self.hours = hours.TradingHours(config.trading_hours, config.trading_timezone)

    async def stream(self) -> AsyncIterator[Trade | Quote | Bar]:
        """Events until stopped, or until a fatal error (then the connection is FAILED)."""
        timeout = aiohttp.ClientTimeout(total=None, connect=self.config.auth_timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            try:
                while True:
                    self.connection.move(ConnectionState.CONNECTING)
                    try:
                        async for event in self._session(session):
                            yield event
                        ended = SessionEnded("the server closed the connection")
                    except SessionEnded as exc:
                        ended = exc
                    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                        ended = self._transport_failure(exc)
                    if ended.retry_after_s is None:
                        self.connection.move(ConnectionState.FAILED, str(ended), reason="fatal")
                        return
                    delay_s = self.backoff.next_s(at_least_s=ended.retry_after_s)
                    self.connection.move(
                        ConnectionState.RECONNECTING,
                        f"{ended}; next try in {delay_s:.1f} s",
                        reason=ended.reason,
                    )
                    await self._sleep(delay_s)
            finally:
                if self.connection.state is not ConnectionState.FAILED:
                    self.connection.move(ConnectionState.DISCONNECTED)

    def _transport_failure(self, exc: BaseException) -> SessionEnded:
        if isinstance(exc, aiohttp.WSServerHandshakeError):
            if exc.status == 429:
                return SessionEnded(
                    "handshake refused: HTTP 429",
                    retry_after_s=self.config.long_backoff_s,
                    reason="limited",
                )
            if exc.status in (401, 403):
                return SessionEnded(f"handshake refused: HTTP {exc.status}", retry_after_s=None)
            return SessionEnded(f"handshake refused: HTTP {exc.status}", reason="handshake")
        if isinstance(exc, TimeoutError):
            return SessionEnded("timed out while connecting", reason="timeout")
        return SessionEnded(f"connection failed: {type(exc).__name__}: {exc}", reason="transport")

    async def _session(self, session: aiohttp.ClientSession) -> AsyncIterator[Trade | Quote | Bar]:
        config = self.config
        self.sessions += 1
        async with session.ws_connect(
            config.stream_url,
            heartbeat=config.heartbeat_s,
            max_msg_size=_TRANSPORT_MAX_BYTES,
            autoping=True,
        ) as ws:
            deadline_s = self._clock() + config.auth_timeout_s
            await self._expect(ws, protocol.Success, "connected", deadline_s)
            self.connection.move(ConnectionState.CONNECTED)
            await ws.send_bytes(self._auth_message())
            await self._expect(ws, protocol.Success, "authenticated", deadline_s)
            await ws.send_bytes(self._subscribe_message())
            reply = await self._expect(ws, protocol.Subscription, None, deadline_s)
            log.info(
                "Subscribed on %s: trades %s, quotes %s, bars %s.",
                self.name,
                reply.trades or "-",
                reply.quotes or "-",
                reply.bars or "-",
            )
            self.connection.move(ConnectionState.SUBSCRIBED)
            subscribed_at_s = last_data_s = self._clock()
            try:
                while True:
                    controls, events = await self._receive_data(ws, last_data_s)
                    for control in controls:
                        if isinstance(control, protocol.Error):
                            raise self._on_error(control)
                    if events:
                        last_data_s = self._clock()
                        self.connection.data_received()
                    elif not controls:
                        # No data yet by the deadline: a fault only while the symbols trade.
                        last_data_s = self._silence_checked(last_data_s)
                    for event in events:
                        yield event
            finally:
                # Only a session that stayed up a while earns a fresh backoff: a server that
                # accepts and drops at once is retried at the backoff's pace.
                if self._clock() - subscribed_at_s >= config.backoff_max_s:
                    self.backoff.reset()

    async def _receive_data(
        self, ws: aiohttp.ClientWebSocketResponse, last_data_s: float
    ) -> tuple[list[protocol.Control], list[Trade | Quote | Bar]]:
        """The next frame, or ([], []) when `silence_timeout_s` has passed since `last_data_s`.

        The deadline is ours, around the whole receive: aiohttp's own `receive(timeout)` starts
        again at every pong it swallows, so a socket that only pongs would never time out."""
        remaining_s = last_data_s + self.config.silence_timeout_s - self._clock()
        try:
            async with asyncio.timeout(max(0.0, remaining_s)):
                return await self._receive(ws, None, "")
        except TimeoutError:
            return [], []

    def _silence_checked(self, last_data_s: float) -> float:
        """End the session if data was expected since `last_data_s`; else restart the count."""
        now_s = self._clock()
        if now_s - last_data_s < self.config.silence_timeout_s:
            return last_data_s  # a frame with nothing in it (all dropped): keep counting
        if not self.hours.open_at(self._wall_clock()):
            return now_s  # the market is closed: quiet is normal; look again a timeout later
        self.connection.went_silent(last_data_s)
        raise SessionEnded(
            f"no data frame for {now_s - last_data_s:.1f} s (silence_timeout_s "
            f"{self.config.silence_timeout_s:g}) while {len(self.symbols)} symbol(s) should "
            "trade; pings are answered, but the socket is silent",
            reason="silence",
        )

    async def _receive(
        self, ws: aiohttp.ClientWebSocketResponse, timeout_s: float | None, on_timeout: str
    ) -> tuple[list[protocol.Control], list[Trade | Quote | Bar]]:
        try:
            message = await ws.receive(timeout=timeout_s)
        except TimeoutError:
            raise SessionEnded(on_timeout, reason="timeout") from None
        if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            return self.decoder.decode(message.data)
        if message.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
        ):
            raise SessionEnded(f"the server closed the connection (code {ws.close_code})")
        if message.type is aiohttp.WSMsgType.ERROR:
            raise SessionEnded(f"connection error: {ws.exception()}", reason="transport")
        return [], []

    async def _expect(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        kind: type[protocol.Success] | type[protocol.Subscription],
        msg: str | None,
        deadline_s: float,
    ) -> protocol.Subscription:
        """Read until a control message of `kind` (with `msg`) arrives; errors end the session.

        Anything else before it (data cannot come yet) is ignored."""
        late = f"no {msg or 'subscription reply'} within {self.config.auth_timeout_s:g} s"
        while True:
            remaining_s = deadline_s - self._clock()
            if remaining_s <= 0:
                raise SessionEnded(late)
            controls, _ = await self._receive(ws, remaining_s, late)
            for control in controls:
                if isinstance(control, protocol.Error):
                    raise self._on_error(control)
                if isinstance(control, kind) and (msg is None or control.msg == msg):  # type: ignore[union-attr]
                    return control  # type: ignore[return-value]

    def _on_error(self, error: protocol.Error) -> SessionEnded:
        self.last_error = error
        if error.fatal:
            return SessionEnded(f"{error.describe()}: retrying will not help", retry_after_s=None)
        if error.code in protocol.LONG_BACKOFF_ERRORS:
            return SessionEnded(
                error.describe(), retry_after_s=self.config.long_backoff_s, reason="limited"
            )
        return SessionEnded(error.describe(), reason="error_frame")

    def _auth_message(self) -> bytes:
        return msgspec.json.encode(
            {
                "action": "auth",
                "key": self._credentials.key_id,
                "secret": self._credentials.secret_key.get_secret_value(),
            }
        )

    def _subscribe_message(self) -> bytes:
        message: dict[str, object] = {"action": "subscribe"}
        for channel, wanted in (
            ("trades", self.config.trades),
            ("quotes", self.config.quotes),
            ("bars", self.config.bars),
        ):
            if wanted:
                message[channel] = self.symbols
        return msgspec.json.encode(message)

    def clock_ns(self) -> int:
        """Event time now: a live feed lives on the wall clock."""
        return time.time_ns()
