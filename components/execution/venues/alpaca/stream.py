"""Alpaca's `trade_updates` WebSocket: authenticate, listen, and hand over each event.

The stream is `<base URL>/stream` with the scheme made ws(s). Paper sends binary frames, live
text frames: both are read. Alpaca does not replay what was sent while a client was away, so the
venue polls the orders it follows after every reconnect (and while the stream is down).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp

from components.execution.venues.base import VenueUnavailable
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)


def stream_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if base.startswith("https://"):
        return "wss://" + base.removeprefix("https://") + "/stream"
    return "ws://" + base.removeprefix("http://") + "/stream"


def _decode(message: aiohttp.WSMessage) -> Any:
    data = message.data
    if isinstance(data, bytes):
        data = data.decode()
    return json.loads(data)


async def trade_updates(
    session: aiohttp.ClientSession,
    base_url: str,
    credentials: AlpacaCredentials,
    on_listening: Callable[[], Awaitable[None]],
) -> AsyncIterator[dict[str, Any]]:
    """The `data` of every trade_updates event, until the connection ends (then it returns);
    `on_listening` is awaited once the venue confirms the subscription."""
    async with session.ws_connect(stream_url(base_url), heartbeat=20) as ws:
        await ws.send_str(
            json.dumps(
                {
                    "action": "auth",
                    "key": credentials.key_id,
                    "secret": credentials.secret_key.get_secret_value(),
                }
            )
        )
        reply = _decode(await ws.receive())
        if reply.get("data", {}).get("status") != "authorized":
            raise VenueUnavailable("trade_updates: not authorized")
        await ws.send_str(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        async for message in ws:
            if message.type not in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                return
            try:
                parsed = _decode(message)
            except (ValueError, UnicodeDecodeError):
                log.warning("Skipped a trade_updates frame that is not JSON.")
                continue
            if isinstance(parsed, dict) and parsed.get("stream") == "trade_updates":
                yield parsed.get("data", {})
            elif isinstance(parsed, dict) and parsed.get("stream") == "listening":
                log.info("Listening to trade_updates.")
                await on_listening()
