"""A local stand-in for Alpaca's market-data stream v2, on 127.0.0.1, following its documentation:

- on connect it greets with `[{"T":"success","msg":"connected"}]`;
- `{"action":"auth","key":...,"secret":...}` is answered `authenticated`, or error 402 (wrong
  keys) then close; no auth within `auth_timeout_s` is error 404 then close; data actions before
  auth are error 401; a second auth is 403;
- more than `max_connections` at once: error 406 then close;
- `{"action":"subscribe","trades":[...],"quotes":[...],"bars":[...]}` is answered by the
  `subscription` message listing every channel; a malformed action is error 400;
- `push(messages)` sends one batch (a JSON array) to every subscribed client, keeping only the
  messages of symbols each one subscribed to on that channel.

Failures for tests: `fail_next(code)` sends that error frame to the next connection instead of
the greeting's follow-up (then closes), `refuse_next(status)` fails the next HTTP handshake,
`drop_all()` closes every socket, `mute()` (or `silence()`) keeps sockets open and answering
WebSocket pings (aiohttp's autoping) but sends no data frame to anyone, new sessions included
(they are greeted, authenticated and subscribed, then hear nothing), until `mute(False)`;
`ping_interval_s` makes the server ping its clients too, as a keepalive would,
`send_raw(text)` sends a frame verbatim, `greet = False` opens sockets that never
speak, `answer_pings = False` leaves WebSocket pings unanswered (a half-dead peer).
`drop_after_subscribe = n` closes the next n sessions as soon as they are subscribed.
`connections` records each connection's loop time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import WSMsgType, web

from components.runtime import server

KEY, SECRET = "PKTESTKEY", "test-secret-value"
_CHANNELS = {"t": "trades", "q": "quotes", "b": "bars", "u": "updatedBars", "d": "dailyBars"}
_ERRORS = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    500: "internal error",
}


def error(code: int) -> list[dict[str, Any]]:
    return [{"T": "error", "code": code, "msg": _ERRORS.get(code, "error")}]


class _Client:
    def __init__(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        self.authenticated = False
        self.channels: dict[str, set[str]] = {}


class FakeAlpacaStream:
    def __init__(
        self,
        *,
        max_connections: int = 1,
        auth_timeout_s: float = 10.0,
        ping_interval_s: float | None = None,
    ) -> None:
        self.max_connections = max_connections
        self.auth_timeout_s = auth_timeout_s
        self.ping_interval_s = ping_interval_s
        self.muted_frames = 0  # data frames a mute swallowed
        self.connections: list[float] = []
        self.received: list[dict[str, Any]] = []
        self.clients: list[_Client] = []
        self.silent = False
        self.greet = True
        self.answer_pings = True
        self.drop_after_subscribe = 0  # this many sessions are closed right after subscribing
        self._fail_next: list[int] = []
        self._refuse_next: list[int] = []
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v2/test"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/{feed}", self._handle)
        self._runner = await server.start(app, "127.0.0.1", 0)
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.drop_all()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do ---------------------------------------------------------------------

    def fail_next(self, *codes: int) -> None:
        self._fail_next.extend(codes)

    def refuse_next(self, *statuses: int) -> None:
        self._refuse_next.extend(statuses)

    def mute(self, muted: bool = True) -> None:
        """The mute fault: sockets stay open and pongs keep coming, but no data frame does."""
        self.silent = muted

    silence = mute

    @property
    def subscribed(self) -> list[_Client]:
        return [c for c in self.clients if c.channels and not c.ws.closed]

    async def push(self, messages: list[dict[str, Any]]) -> None:
        for client in self.subscribed:
            wanted = [
                m
                for m in messages
                if m.get("S") in client.channels.get(_CHANNELS.get(m.get("T", ""), ""), set())
                or m.get("T") not in _CHANNELS
            ]
            if wanted and self.silent:
                self.muted_frames += 1
            elif wanted:
                await client.ws.send_str(json.dumps(wanted))

    async def send_raw(self, text: str) -> None:
        for client in self.subscribed:
            if self.silent:
                self.muted_frames += 1
            else:
                await client.ws.send_str(text)

    async def send_error(self, code: int, *, close: bool = True) -> None:
        for client in list(self.subscribed):
            await client.ws.send_str(json.dumps(error(code)))
            if close:
                await client.ws.close()

    async def drop_all(self) -> None:
        for client in list(self.clients):
            await client.ws.close()

    # --- the server ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self._refuse_next:
            return web.Response(status=self._refuse_next.pop(0), text="refused")
        ws = web.WebSocketResponse(autoping=self.answer_pings, heartbeat=self.ping_interval_s)
        await ws.prepare(request)
        self.connections.append(asyncio.get_running_loop().time())
        client = _Client(ws)
        live = [c for c in self.clients if not c.ws.closed]
        self.clients.append(client)
        try:
            if not self.greet:  # a socket that opens and then says nothing
                await ws.receive()
                return ws
            await ws.send_str(json.dumps([{"T": "success", "msg": "connected"}]))
            if len(live) >= self.max_connections:
                await ws.send_str(json.dumps(error(406)))
                return ws
            if self._fail_next:
                await ws.send_str(json.dumps(error(self._fail_next.pop(0))))
                return ws
            await self._serve(client)
        finally:
            await ws.close()
            self.clients.remove(client)
        return ws

    async def _serve(self, client: _Client) -> None:
        ws = client.ws
        async for message in self._messages(ws, client):
            if message is None:  # auth timeout
                await ws.send_str(json.dumps(error(404)))
                return
            self.received.append(message)
            action = message.get("action")
            if action == "auth":
                if client.authenticated:
                    await ws.send_str(json.dumps(error(403)))
                elif message.get("key") == KEY and message.get("secret") == SECRET:
                    client.authenticated = True
                    await ws.send_str(json.dumps([{"T": "success", "msg": "authenticated"}]))
                else:
                    await ws.send_str(json.dumps(error(402)))
                    return
            elif action in ("subscribe", "unsubscribe"):
                if not client.authenticated:
                    await ws.send_str(json.dumps(error(401)))
                    continue
                for channel in ("trades", "quotes", "bars", "updatedBars", "dailyBars"):
                    symbols = message.get(channel, [])
                    if not isinstance(symbols, list):
                        await ws.send_str(json.dumps(error(400)))
                        break
                    current = client.channels.setdefault(channel, set())
                    if action == "subscribe":
                        current.update(symbols)
                    else:
                        current.difference_update(symbols)
                else:
                    reply: dict[str, Any] = {"T": "subscription"}
                    for channel, symbols in client.channels.items():
                        reply[channel] = sorted(symbols)
                    await ws.send_str(json.dumps([reply]))
                    if self.drop_after_subscribe > 0:
                        self.drop_after_subscribe -= 1
                        return
            else:
                await ws.send_str(json.dumps(error(400)))

    async def _messages(
        self, ws: web.WebSocketResponse, client: _Client
    ) -> AsyncIterator[dict[str, Any] | None]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.auth_timeout_s
        while True:
            timeout = None if client.authenticated else max(0.0, deadline - loop.time())
            try:
                message = await ws.receive(timeout=timeout)
            except TimeoutError:
                yield None
                return
            if message.type in (WSMsgType.PING, WSMsgType.PONG):
                continue  # only seen with answer_pings False: ignored, as a hung peer would
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            try:
                parsed = json.loads(message.data)
            except ValueError:
                parsed = None
            if not isinstance(parsed, dict):
                await ws.send_str(json.dumps(error(400)))
                continue
            yield parsed


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeAlpacaStream]:
    fake = FakeAlpacaStream(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
