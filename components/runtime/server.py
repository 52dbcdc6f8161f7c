"""Each component's HTTP server: `/health` (liveness), `/ready` (readiness), `/metrics`
(Prometheus text exposition) and `/status` (what the component chooses to show, as JSON).

Liveness says the event loop answers; readiness says the component can do its job now (connected
to the broker and to its own dependencies). Both answer 200 or 503 with the checks as JSON.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import prometheus_client as prom
from aiohttp import web

from components.runtime import journal

Checks = Callable[[], dict[str, bool]]
Status = Callable[[], dict[str, Any]]


def build_app(
    registry: prom.CollectorRegistry,
    readiness: Checks,
    status: Status,
    routes: Sequence[web.RouteDef] = (),
) -> web.Application:
    """The four endpoints every component serves, plus the component's own `routes`."""

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def ready(_: web.Request) -> web.Response:
        checks = readiness()
        ok = all(checks.values())
        return web.json_response(
            {"status": "ready" if ok else "not ready", "checks": checks}, status=200 if ok else 503
        )

    async def metrics(_: web.Request) -> web.Response:
        # The component's own, then the process-wide journal counters (`runtime.journal`).
        body = prom.generate_latest(registry) + prom.generate_latest(journal.METRICS)
        return web.Response(body=body, headers={"Content-Type": prom.CONTENT_TYPE_LATEST})

    async def show_status(_: web.Request) -> web.Response:
        return web.json_response(status(), dumps=_dumps)

    app = web.Application()
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
