"""A local stand-in for Alpaca's Trading API (REST v2 and the `trade_updates` stream), on
127.0.0.1, following its documentation:

- every request needs `APCA-API-KEY-ID` / `APCA-API-SECRET-KEY`: otherwise 401
  `{"code": 40110000, "message": "request is not authorized"}`;
- `POST /v2/orders` (symbol, qty, side, type market|limit|stop|stop_limit, time_in_force
  day|gtc|ioc, limit_price, stop_price, client_order_id <= 48 characters) answers 200 with the
  order object; 403 `insufficient buying power`; 422 for invalid input, among them
  `client_order_id must be unique` for an id already used;
- `GET /v2/orders:by_client_order_id?client_order_id=` 200 or 404 `order not found`;
  `GET /v2/orders?status=open` the open orders; `DELETE /v2/orders/{id}` 204, 404, or 422
  `order is not cancelable`; `GET /v2/positions` and `GET /v2/account`;
- every response carries `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset`
  (Unix seconds); past the limit, 429 `{"code": 42910000, "message": "rate limit exceeded"}`;
- the stream at `/stream`: `{"action":"auth","key","secret"}` answered on stream
  `authorization` (authorized or unauthorized), `{"action":"listen","data":{"streams":[...]}}`
  on stream `listening`; then `trade_updates` events (new, partial_fill, fill, canceled,
  rejected, expired), each with the order object, fills with `execution_id`, `price`, `qty`,
  `position_qty`; sent as binary frames, as the paper endpoint does.

Prices: `set_price(symbol, price)` is the market. A market order (or a marketable limit) fills at
it when it arrives, in two executions when `partial_fills` is on; a resting limit order fills when
a later price crosses it.

Faults, each drawn from the seeded `faults` settings or forced with `fail_next(...)`: 500 or 503
before acting; a 429 burst; a dropped connection before acting; accept-then-timeout (the order is
created, the answer never comes: the connection is held past the client's timeout and closed);
duplicate stream events; out-of-order stream events (an event held back and sent after the next
one of the same stream); `drop_streams()` closes every stream; and `mute()`, the fault pings
cannot see: every stream stays open, answers WebSocket pings (aiohttp's autoping) and control
messages (authorization, listening), but no trade_updates event is sent, on old or new
connections, until `mute(False)` (the events are lost, as Alpaca does not replay them).
For the parsers: `corrupt_next(body)` acts on the next REST request as usual, then answers 200
with `body` instead (a venue bug, or a proxy in the way), and `send_event(data)` sends any
`data` as a trade_updates event.
`submits` counts accepted order creations per client order id (more than one would be a
duplicate order: the fake, like Alpaca, refuses it with 422, and counts the attempt in
`duplicate_attempts`).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web

from components.runtime import server

KEY, SECRET = "PKTESTKEY", "test-secret-value"
OPEN = {"new", "accepted", "pending_new", "partially_filled", "pending_cancel"}


def _error(status: int, code: int, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


@dataclasses.dataclass
class Faults:
    server_error: float = 0.0  # 500/503 before acting
    rate_limit: float = 0.0  # starts a burst of `burst` 429s
    burst: int = 3
    dropped: float = 0.0  # connection closed before acting
    accept_then_timeout: float = 0.0  # order created, answer never sent
    hang_s: float = 1.0  # how long an accept-then-timeout holds the connection
    duplicate_event: float = 0.0
    out_of_order: float = 0.0  # an event held back, sent after the next one


@dataclasses.dataclass
class _Order:
    body: dict[str, Any]
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)


def _now_iso() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{time.time_ns() % 10**9:09d}Z"


class FakeAlpacaTrading:
    def __init__(
        self,
        *,
        faults: Faults | None = None,
        seed: int = 0,
        rate_limit: int = 200,
        buying_power: Decimal = Decimal(1_000_000),
        partial_fills: bool = False,
    ) -> None:
        self.faults = faults or Faults()
        self.rng = random.Random(seed)
        self.rate_limit = rate_limit
        self.buying_power = buying_power
        self.partial_fills = partial_fills
        self.prices: dict[str, Decimal] = {}
        self.orders: dict[str, _Order] = {}  # by venue order id
        self.by_client_id: dict[str, str] = {}
        self.positions: dict[str, Decimal] = collections.defaultdict(Decimal)
        self.submits: collections.Counter[str] = collections.Counter()
        self.duplicate_attempts = 0
        self.injected: collections.Counter[str] = collections.Counter()
        self.requests: collections.Counter[str] = collections.Counter()
        self._forced: list[str] = []
        self._corrupt: list[Any] = []
        self._burst_left = 0
        self._window_start = time.time()
        self._window_count = 0
        self._streams: set[web.WebSocketResponse] = set()
        self.muted = False
        self.stream_connections = 0  # trade_updates sockets opened
        self._held: dict[web.WebSocketResponse, dict[str, Any]] = {}  # out-of-order events
        self._sending: set[asyncio.Task[None]] = set()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, port: int = 0) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_post("/v2/orders", self._create)
        app.router.add_get("/v2/orders:by_client_order_id", self._by_client_id)
        app.router.add_get("/v2/orders", self._list)
        app.router.add_delete("/v2/orders/{order_id}", self._cancel)
        app.router.add_get("/v2/positions", self._positions)
        app.router.add_get("/v2/account", self._account)
        app.router.add_get("/stream", self._stream)
        self._runner = await server.start(app, "127.0.0.1", port)
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        await self.drop_streams()
        if self._runner is not None:
            await self._runner.cleanup()

    # --- what tests do ---------------------------------------------------------------------

    def set_price(self, symbol: str, price: Decimal | str) -> None:
        self.prices[symbol] = Decimal(price)
        for order in list(self.orders.values()):
            body = order.body
            if body["symbol"] == symbol and body["status"] in OPEN:
                self._match(order)

    def fail_next(self, *faults: str) -> None:
        """Force the next requests' faults: "500", "503", "429", "drop", "timeout"."""
        self._forced.extend(faults)

    async def drop_streams(self) -> None:
        for ws in list(self._streams):
            await ws.close()
        self._streams.clear()

    def corrupt_next(self, *bodies: Any) -> None:
        """The next REST answers, after acting: 200 with these bodies instead."""
        self._corrupt.extend(bodies)

    async def send_event(self, data: Any) -> None:
        for ws in list(self._streams):
            await self._send(ws, {"stream": "trade_updates", "data": data})

    def mute(self, muted: bool = True) -> None:
        """Streams stay open and answer pings, but carry no trade_updates event."""
        self.muted = muted

    def order(self, client_order_id: str) -> dict[str, Any] | None:
        venue_id = self.by_client_id.get(client_order_id)
        return None if venue_id is None else self.orders[venue_id].body

    # --- the plumbing: auth, rate limit, faults ---------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == "/stream":
            return await handler(request)
        self.requests[f"{request.method} {request.path}"] += 1
        if (
            request.headers.get("APCA-API-KEY-ID") != KEY
            or request.headers.get("APCA-API-SECRET-KEY") != SECRET
        ):
            return _error(401, 40110000, "request is not authorized")
        now = time.time()
        if now - self._window_start >= 60:
            self._window_start, self._window_count = now, 0
        self._window_count += 1
        reset = int(self._window_start + 60)
        headers = {
            "X-RateLimit-Limit": str(self.rate_limit),
            "X-RateLimit-Remaining": str(max(0, self.rate_limit - self._window_count)),
            "X-RateLimit-Reset": str(reset),
        }
        fault = self._draw_fault(request)
        if fault == "429" or self._window_count > self.rate_limit:
            response = _error(429, 42910000, "rate limit exceeded")
            response.headers.update(headers)
            if fault == "429":
                response.headers["Retry-After"] = "0.02"  # fractional: only this fake does so
            return response
        if fault in ("500", "503"):
            return _error(int(fault), 50010000, "internal server error")
        if fault == "drop":
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("dropped (injected)")
        response = await handler(request)
        if fault == "timeout":
            # The venue acted; the answer is held back past the client's timeout, then lost.
            await asyncio.sleep(self.faults.hang_s)
            if request.transport is not None:
                request.transport.close()
            raise ConnectionResetError("timed out (injected)")
        if self._corrupt:
            self.injected["corrupt"] += 1
            response = web.json_response(self._corrupt.pop(0))
        response.headers.update(headers)
        return response

    def _draw_fault(self, request: web.Request) -> str:
        if self._forced:
            fault = self._forced.pop(0)
        else:
            f, draw = self.faults, self.rng.random
            if self._burst_left or draw() < f.rate_limit:
                self._burst_left = (self._burst_left or f.burst) - 1
                fault = "429"
            elif draw() < f.server_error:
                fault = self.rng.choice(["500", "503"])
            elif draw() < f.dropped:
                fault = "drop"
            elif request.method == "POST" and draw() < f.accept_then_timeout:
                fault = "timeout"
            else:
                return ""
        self.injected[fault] += 1
        return fault

    # --- REST -------------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except json.JSONDecodeError:
            return _error(422, 40010001, "request body format is invalid")
        problem = self._invalid(body)
        if problem:
            return _error(422, 40010001, problem)
        client_order_id = body.get("client_order_id") or str(uuid.uuid4())
        if client_order_id in self.by_client_id:
            self.duplicate_attempts += 1
            return _error(422, 40010001, "client_order_id must be unique")
        qty = Decimal(str(body["qty"]))
        price = self.prices.get(body["symbol"]) or Decimal(body.get("limit_price") or 0)
        if body["side"] == "buy" and qty * price > self.buying_power:
            return _error(403, 40310000, "insufficient buying power")
        venue_id = str(uuid.uuid4())
        now = _now_iso()
        order = _Order(
            {
                "id": venue_id,
                "client_order_id": client_order_id,
                "created_at": now,
                "updated_at": now,
                "submitted_at": now,
                "filled_at": None,
                "canceled_at": None,
                "symbol": body["symbol"],
                "asset_class": "us_equity",
                "qty": str(qty),
                "filled_qty": "0",
                "filled_avg_price": None,
                "order_class": "",
                "order_type": body["type"],
                "type": body["type"],
                "side": body["side"],
                "time_in_force": body["time_in_force"],
                "limit_price": body.get("limit_price"),
                "stop_price": body.get("stop_price"),
                "status": "accepted",
                "extended_hours": False,
            }
        )
        self.orders[venue_id] = order
        self.by_client_id[client_order_id] = venue_id
        self.submits[client_order_id] += 1
        snapshot = dict(order.body)
        # Accepted now; routed, and filled if it can be, just after the answer.
        asyncio.get_running_loop().call_soon(self._route, order)
        return web.json_response(snapshot)

    def _invalid(self, body: Any) -> str:
        if not isinstance(body, dict):
            return "request body format is invalid"
        for field in ("symbol", "qty", "side", "type", "time_in_force"):
            if field not in body:
                return f"{field} is required"
        if body["side"] not in ("buy", "sell"):
            return "invalid side"
        if body["type"] not in ("market", "limit", "stop", "stop_limit"):
            return "invalid order type"
        if body["time_in_force"] not in ("day", "gtc", "ioc", "fok", "opg", "cls"):
            return "invalid time_in_force"
        if body["type"] in ("limit", "stop_limit") and body.get("limit_price") is None:
            return "limit_price is required"
        if body["type"] in ("stop", "stop_limit") and body.get("stop_price") is None:
            return "stop_price is required"
        if len(body.get("client_order_id") or "") > 48:
            return "client_order_id must be no more than 48 characters"
        try:
            if Decimal(str(body["qty"])) <= 0:
                return "qty must be > 0"
        except ArithmeticError:
            return "invalid qty"
        return ""

    def _route(self, order: _Order) -> None:
        order.body["status"] = "new"
        self._event("new", order)
        self._match(order)
        body = order.body
        if body["status"] in ("new",) and body["time_in_force"] == "ioc":
            self._close(order, "canceled")

    def _match(self, order: _Order) -> None:
        body = order.body
        price = self.prices.get(body["symbol"])
        if price is None or body["type"] in ("stop", "stop_limit"):
            return  # stops wait for a price move this fake does not model
        if body["type"] == "limit":
            limit = Decimal(body["limit_price"])
            if (body["side"] == "buy" and price > limit) or (
                body["side"] == "sell" and price < limit
            ):
                return
        remaining = Decimal(body["qty"]) - order.filled
        parts = [remaining]
        if self.partial_fills and remaining > 1 and order.filled == 0:
            first = (remaining / 2).to_integral_value()
            parts = [first, remaining - first]
        for qty in parts:
            self._execute(order, qty, price)

    def _execute(self, order: _Order, qty: Decimal, price: Decimal) -> None:
        body = order.body
        order.filled += qty
        order.notional += qty * price
        sign = 1 if body["side"] == "buy" else -1
        self.positions[body["symbol"]] += sign * qty
        complete = order.filled >= Decimal(body["qty"])
        body["status"] = "filled" if complete else "partially_filled"
        body["filled_qty"] = str(order.filled)
        body["filled_avg_price"] = str(order.notional / order.filled)
        body["updated_at"] = _now_iso()
        if complete:
            body["filled_at"] = body["updated_at"]
        self._event(
            "fill" if complete else "partial_fill",
            order,
            execution_id=str(uuid.uuid4()),
            price=str(price),
            qty=str(qty),
            position_qty=str(self.positions[body["symbol"]]),
            timestamp=body["updated_at"],
        )

    def _close(self, order: _Order, status: str) -> None:
        order.body["status"] = status
        order.body["updated_at"] = order.body["canceled_at"] = _now_iso()
        self._event(status, order, timestamp=order.body["updated_at"])

    async def _by_client_id(self, request: web.Request) -> web.Response:
        found = self.order(request.query.get("client_order_id", ""))
        if found is None:
            return _error(404, 40410000, "order not found")
        return web.json_response(found)

    async def _list(self, request: web.Request) -> web.Response:
        status = request.query.get("status", "open")
        orders = [
            o.body
            for o in self.orders.values()
            if status == "all" or (status == "open") == (o.body["status"] in OPEN)
        ]
        return web.json_response(orders)

    async def _cancel(self, request: web.Request) -> web.Response:
        order = self.orders.get(request.match_info["order_id"])
        if order is None:
            return _error(404, 40410000, "order not found")
        if order.body["status"] not in OPEN:
            return _error(422, 42210000, "order is not cancelable")
        self._close(order, "canceled")
        return web.Response(status=204)

    async def _positions(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "symbol": symbol,
                    "qty": str(qty),
                    "side": "long" if qty > 0 else "short",
                    "asset_class": "us_equity",
                }
                for symbol, qty in sorted(self.positions.items())
                if qty
            ]
        )

    async def _account(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": "fake-account",
                "account_number": "PA0000000",
                "status": "ACTIVE",
                "currency": "USD",
                "buying_power": str(self.buying_power),
                "cash": str(self.buying_power),
                "equity": str(self.buying_power),
                "trading_blocked": False,
            }
        )

    # --- the trade_updates stream -----------------------------------------------------------

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse()  # autoping: pings are answered, muted or not
        await ws.prepare(request)
        self.stream_connections += 1
        authorized = False
        async for message in ws:
            if message.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            try:
                parsed = json.loads(message.data)
            except (TypeError, ValueError):
                continue
            action = parsed.get("action") if isinstance(parsed, dict) else None
            if action in ("auth", "authenticate"):
                data = parsed.get("data", parsed)
                authorized = data.get("key_id", data.get("key")) == KEY and (
                    data.get("secret_key", data.get("secret")) == SECRET
                )
                status = "authorized" if authorized else "unauthorized"
                await self._send(
                    ws,
                    {
                        "stream": "authorization",
                        "data": {"status": status, "action": "authenticate"},
                    },
                )
                if not authorized:
                    break
            elif action == "listen" and authorized:
                streams = [
                    s for s in parsed.get("data", {}).get("streams", []) if s == "trade_updates"
                ]
                if streams:
                    self._streams.add(ws)
                else:
                    self._streams.discard(ws)
                await self._send(ws, {"stream": "listening", "data": {"streams": streams}})
        self._streams.discard(ws)
        self._held.pop(ws, None)
        return ws

    @staticmethod
    async def _send(ws: web.WebSocketResponse, message: dict[str, Any]) -> None:
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_bytes(json.dumps(message).encode())

    def _event(self, event: str, order: _Order, **fields: str) -> None:
        message = {
            "stream": "trade_updates",
            "data": {"event": event, "order": dict(order.body), **fields},
        }
        if self.muted:
            self.injected["muted_event"] += 1  # lost: Alpaca does not replay a stream
            return
        copies = 2 if self.rng.random() < self.faults.duplicate_event else 1
        if copies == 2:
            self.injected["duplicate_event"] += 1
        hold = self.rng.random() < self.faults.out_of_order
        loop = asyncio.get_running_loop()
        for ws in list(self._streams):
            held = self._held.pop(ws, None)
            if hold and held is None:
                self._held[ws] = message  # goes out after the next event
                self.injected["out_of_order_event"] += 1
                continue
            batch = [message] * copies + ([held] if held is not None else [])
            task = loop.create_task(self._send_all(ws, batch))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _send_all(self, ws: web.WebSocketResponse, messages: list[dict[str, Any]]) -> None:
        for message in messages:  # in this order: a task per message could reorder them
            await self._send(ws, message)


@contextlib.asynccontextmanager
async def running(**options: Any) -> AsyncIterator[FakeAlpacaTrading]:
    fake = FakeAlpacaTrading(**options)
    await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()
