"""Alpaca's `trade_updates` WebSocket: authenticate, listen, and hand over each event.

The stream is `<base URL>/stream` with the scheme made ws(s). Paper sends binary frames, live
text frames: both are read. Alpaca does not replay what was sent while a client was away, so the
venue polls the orders it follows after every reconnect (and while the stream is down).

An open socket that answers pings is not proof that updates flow: `last_data_s` is the time of
the last *data* frame (a trade_updates event, or the `listening` confirmation that opens a
session), never of pings, pongs or anything else, so that the venue can tell a muted stream from a
quiet one. `abort` ends the current session, for the venue to reconnect when it caught the stream
missing updates. Authentication and the subscription must finish within `auth_timeout_s`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from components.execution.venues.base import VenueUnavailable
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)
HEARTBEAT_S = 20.0  # WebSocket pings: find a peer that stopped answering altogether


class MalformedFrame(ValueError):
    """A trade_updates frame that is not a JSON object."""


def stream_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/stream"
    return "ws://" + base.removeprefix("http://") + "/stream"


def _decode(message: aiohttp.WSMessage) -> Any:
    data = message.data
    if isinstance(data, bytes):
        data = data.decode()
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise MalformedFrame(f"not JSON: {str(data)[:80]!r}") from exc


class TradeUpdates:
    """One trade_updates connection at a time, read as the `data` of each event.

    `clock` is monotonic seconds (injectable for tests)."""

    def __init__(
        self,
        session: Callable[[], aiohttp.ClientSession],
        base_url: str,
        credentials: AlpacaCredentials,
        *,
        auth_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self.url = stream_url(base_url)
        self._credentials = credentials
        self.auth_timeout_s = auth_timeout_s
        self._clock = clock
        self.last_data_s = clock()
        self.malformed = 0  # frames that were not JSON objects
        self._ws: aiohttp.ClientWebSocketResponse | None = None

    async def events(
        self, on_listening: Callable[[], Awaitable[None]]
    ) -> AsyncIterator[dict[str, Any]]:
        """The `data` of every trade_updates event, until the connection ends (then it returns);
        `on_listening` is awaited once the venue confirms the subscription."""
        async with self._session().ws_connect(self.url, heartbeat=HEARTBEAT_S) as ws:
            self._ws = ws
            try:
                async with asyncio.timeout(self.auth_timeout_s):
                    await self._authenticate(ws)
                async for message in ws:
                    if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        return
                    try:
                        parsed = _decode(message)
                    except MalformedFrame as exc:
                        self.malformed += 1
                        log.warning("Skipped a trade_updates frame: %s.", exc)
                        continue
                    if not isinstance(parsed, dict):
                        self.malformed += 1
                        log.warning("Skipped a trade_updates frame that is not an object.")
                    elif parsed.get("stream") == "trade_updates":
                        self.last_data_s = self._clock()
                        yield parsed.get("data")  # checked by the venue's parser
                    elif parsed.get("stream") == "listening":
                        self.last_data_s = self._clock()
                        log.info("Listening to trade_updates.")
                        await on_listening()
            finally:
                self._ws = None

    async def _authenticate(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        credentials = self._credentials
        secret = credentials.secret_key.get_secret_value()
        await ws.send_str(
            json.dumps({"action": "auth", "key": credentials.key_id, "secret": secret})
        )
        message = await ws.receive()
        if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
            raise VenueUnavailable("trade_updates: closed before authorization")
        reply = _decode(message)
        data = reply.get("data") if isinstance(reply, dict) else None
        if not isinstance(data, dict) or data.get("status") != "authorized":
            raise VenueUnavailable("trade_updates: not authorized")
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))

    async def abort(self) -> None:
        """End the current session (the venue's listener then reconnects)."""
        ws = self._ws
        if ws is not None and not ws.closed:
            await ws.close()
