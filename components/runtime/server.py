"""Each component's HTTP server: `/health` (liveness), `/ready` (readiness), `/metrics`
(Prometheus text exposition) and `/status` (what the component chooses to show, as JSON).

Liveness says the event loop answers; readiness says the component can do its job now (connected
to the broker and to its own dependencies). Both answer 200 or 503 with the checks as JSON.

A component's own routes read a body with `json_object`: whatever is wrong with it (not UTF-8,
not JSON, nested too deep, not an object) raises `RequestError`, which every app answers with
400 and `{"error": "..."}`, never a 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import prometheus_client as prom
from aiohttp import web

from components.core.errors import RequestError

log = logging.getLogger(__name__)

Checks = Callable[[], dict[str, bool]]
Status = Callable[[], dict[str, Any]]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's body as a JSON object (no body: an empty one); `RequestError` if it is
    anything else. Read as UTF-8 whatever charset the request declares: JSON is UTF-8."""
    if not request.can_read_body:
        return {}
    data = await request.read()
    if not data.strip():
        return {}
    try:
        body = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestError(f"the body must be UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise RequestError("the body must be UTF-8 JSON: nested too deep") from None
    if not isinstance(body, dict):
        raise RequestError(f"the body must be a JSON object (was {type(body).__name__})")
    return body


@web.middleware
async def _bad_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except RequestError as exc:
        log.info("Refused %s %s: %s.", request.method, request.path, exc)
        return web.json_response({"error": str(exc)}, status=400)


def build_app(
    registry: prom.CollectorRegistry,
    readiness: Checks,
    status: Status,
    routes: Sequence[web.RouteDef] = (),
    shared: Sequence[prom.CollectorRegistry] = (),
) -> web.Application:
    """The four endpoints every component serves, plus the component's own `routes`; `/metrics`
    shows `registry`, then the process-wide `shared` ones (e.g. `journal.METRICS`)."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        checks = readiness()
        ok = all(checks.values())
        return web.json_response(
            {"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503
        )

    async def metrics(_: web.Request) -> web.Response:
        body = b"".join(prom.generate_latest(r) for r in (registry, *shared))
        return web.Response(body=body, headers={"Content-Type": prom.CONTENT_TYPE_LATEST})

    async def show_status(_: web.Request) -> web.Response:
        return web.json_response(status(), dumps=_dumps)

    app = web.Application(middlewares=[_bad_requests])
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/status", show_status)
    app.router.add_routes(routes)
    return app


def _dumps(value: Any) -> str:
    return json.dumps(value, default=str)


async def start(app: web.Application, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, host, port, reuse_address=True).start()
    return runner
