"""The rate limiter against a real HTTP server on 127.0.0.1 that limits as Alpaca documents
(`X-RateLimit-Limit`, `-Remaining`, `-Reset` in Unix seconds; 429 past the limit): twenty
concurrent requests through the real Alpaca REST client and the gateway draw one 429, none
reaches the server before the reset it named, and after it they arrive at the bucket's pace,
not all at once."""

from __future__ import annotations

import asyncio
import math
import random
import time

import prometheus_client as prom
from aiohttp import web
from pydantic import SecretStr

from components.core.config import SimulatedVenueConfig
from components.execution.gateway import Gateway, GatewayMetrics
from components.execution.ratelimit import TokenBucket
from components.execution.retry import Backoff
from components.execution.venues.alpaca.client import AlpacaClient
from components.execution.venues.simulated import SimulatedExchange
from components.runtime import server
from components.runtime.credentials import AlpacaCredentials


class WindowServer:
    """`limit` requests per window ending on a whole second; 429 with the window's reset after."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.reset = math.ceil(time.time()) + 1  # whole seconds, as Alpaca sends it
        self.count = 0
        self.accepted: list[float] = []  # wall-clock arrival times
        self.refused: list[float] = []

    async def handle(self, request: web.Request) -> web.Response:
        now = time.time()
        if now >= self.reset:
            self.reset, self.count = math.ceil(now) + 60, 0  # a fresh, long window
        self.count += 1
        headers = {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(0, self.limit - self.count)),
            "X-RateLimit-Reset": str(self.reset),
        }
        if self.count > self.limit:
            self.refused.append(now)
            body = {"code": 42910000, "message": "rate limit exceeded"}
            return web.json_response(body, status=429, headers=headers)
        self.accepted.append(now)
        return web.json_response({"ok": True}, headers=headers)


async def test_requests_when_venue_says_429_with_reset_then_none_early_and_paced_after() -> None:
    limit = WindowServer(limit=10)
    app = web.Application()
    app.router.add_get("/v2/account", limit.handle)
    runner = await server.start(app, "127.0.0.1", 0)
    port = runner.addresses[0][1]
    credentials = AlpacaCredentials(key_id="k", secret_key=SecretStr("s"))
    client = AlpacaClient(f"http://127.0.0.1:{port}", credentials, timeout_s=10)
    limiter = TokenBucket(600, 10)  # 10 a second, 10 at once
    gate = Gateway(
        SimulatedExchange(SimulatedVenueConfig()),
        limiter,
        Backoff(0.01, 0.1, 10, random.Random(1)),
        GatewayMetrics(prom.CollectorRegistry()),
    )
    try:
        async with asyncio.timeout(60):
            answers = await asyncio.gather(
                *(
                    gate.request("asking", lambda: client.request("GET", "/v2/account"))
                    for _ in range(20)
                )
            )
    finally:
        await client.close()
        await runner.cleanup()
    assert answers == [{"ok": True}] * 20
    assert len(limit.refused) == 1  # the eleventh; the rest waited for the reset
    after = sorted(limit.accepted[10:])
    reset = limit.refused[0] // 1 + 1
    assert min(after) >= reset - 0.05  # not before the reset the venue named (clock slack)
    # At the bucket's pace: released 0.1 s apart, so never the burst at once.
    assert max(sum(1 for t in after if first <= t < first + 0.25) for first in after) <= 5
