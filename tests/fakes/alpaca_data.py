"""A local stand-in for Alpaca's historical market-data API (v2 stocks), on 127.0.0.1, following
its documentation: `GET /v2/stocks/bars` and `GET /v2/stocks/trades` with `symbols`, `start`,
`end`, `limit`, `page_token` (and `timeframe` for bars); the keys as `APCA-API-KEY-ID` /
`APCA-API-SECRET-KEY` headers (else 401, or 403 with the wrong ones); answers
`{"bars": {"AAPL": [...], ...}, "next_page_token": "..." | null}`, sorted by symbol then time, at
most `limit` items a page, so a page may end in the middle of a symbol.

The data are generated: `bars_per_symbol` one-minute bars (or trades one second apart) per
symbol from `start`, prices in cents so that every value is an exact decimal. Tests script
failures with `fail(status, times, headers)` and read `requests` (each request's query).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web

from components.runtime import server

KEY, SECRET = "PKDATAKEY", "data-secret"


def _time(ts: dt.datetime) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeAlpacaData:
    def __init__(self, items_per_symbol: int = 25) -> None:
        self.items_per_symbol = items_per_symbol
        self.requests: list[dict[str, str]] = []
        self.failures: list[tuple[int, dict[str, str]]] = []
        self.bad_rows: list[dict[str, Any]] = []  # appended to the first symbol's items
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def fail(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        self.failures.extend([(status, headers or {})] * times)

    def items(self, kind: str, symbol: str, start: dt.datetime) -> list[dict[str, Any]]:
        seed = sum(map(ord, symbol))
        out: list[dict[str, Any]] = []
        for index in range(self.items_per_symbol):
            cents = 10_000 + seed + (index * 7) % 50
            if kind == "bars":
                ts = start + dt.timedelta(minutes=index)
                out.append({"t": _time(ts), "o": cents / 100, "h": (cents + 9) / 100,
                            "l": (cents - 9) / 100, "c": (cents + 3) / 100, "v": 100 + index,
                            "n": 5 + index, "vw": (cents + 1) / 100})  # fmt: skip
            else:
                ts = start + dt.timedelta(seconds=index)
                out.append({"t": _time(ts), "x": "V", "p": cents / 100, "s": 1 + index % 9,
                            "c": ["@"], "i": index, "z": "C"})  # fmt: skip
        return out

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/v2/stocks/{kind}", self._handle)
        self._runner = await server.start(app, "127.0.0.1", 0)
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        query = dict(request.query)
        self.requests.append(query)
        key, secret = (
            request.headers.get("APCA-API-KEY-ID"),
            request.headers.get("APCA-API-SECRET-KEY"),
        )
        if key is None or secret is None:
            return web.json_response({"message": "unauthorized."}, status=401)
        if (key, secret) != (KEY, SECRET):
            return web.json_response({"message": "forbidden."}, status=403)
        if self.failures:
            status, headers = self.failures.pop(0)
            return web.json_response(
                {"message": "scripted failure"}, status=status, headers=headers
            )
        kind = request.match_info["kind"]
        if kind not in ("bars", "trades"):
            return web.json_response({"message": "not found"}, status=404)
        try:
            symbols = query["symbols"].split(",")
            start = dt.datetime.fromisoformat(query["start"]).replace(tzinfo=dt.UTC)
            limit = int(query.get("limit", "1000"))
            if kind == "bars" and query.get("timeframe") != "1Min":
                raise ValueError("this fake serves 1Min bars only")
        except (KeyError, ValueError) as exc:
            return web.json_response({"message": f"invalid request: {exc}"}, status=422)
        rows = [(s, item) for s in sorted(symbols) for item in self.items(kind, s, start)]
        if self.bad_rows:
            first = sorted(symbols)[0]
            rows[len(self.items(kind, first, start)) : len(self.items(kind, first, start))] = [
                (first, row) for row in self.bad_rows
            ]
        offset = 0
        if "page_token" in query:
            offset = int(base64.b64decode(query["page_token"]).decode())
        page = rows[offset : offset + limit]
        body: dict[str, Any] = {kind: {}}
        for symbol, item in page:
            body[kind].setdefault(symbol, []).append(item)
        end = offset + len(page)
        body["next_page_token"] = (
            base64.b64encode(str(end).encode()).decode() if end < len(rows) else None
        )
        return web.Response(text=json.dumps(body), content_type="application/json")


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeAlpacaData]:
    fake = FakeAlpacaData(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
