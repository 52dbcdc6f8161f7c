"""Bad input stays clean: a config that is not UTF-8 is one error line and exit 2 for `run`,
`validate` and `component`; a body that is not UTF-8, not JSON, too deep or not the object an
endpoint takes is a 400 with a JSON error from the real HTTP server, never a 500, and changes
nothing."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client as prom
import pytest

from components.core.config import TradingSystemSpec
from components.core.events import BreakerState
from components.risk import breaker
from components.risk.service import RiskManager
from components.runtime import server
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings
from tests.integration.test_local_run import _cli

pytestmark = pytest.mark.integration

TOKEN = "bad-input-token-51c2"


@pytest.mark.parametrize(
    "command",
    [
        ["run", "{path}", "--duration", "1", "--data-dir", "{tmp}"],
        ["validate", "{path}"],
        ["component", "risk", "--config", "{path}"],
    ],
)
def test_cli_when_config_not_utf8_then_one_error_line_naming_the_file_and_exit_2(
    tmp_path: Path, command: list[str]
) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("symbols: [AAPL]\n# caf\u00e9\n".encode("latin-1"))
    result = _cli(*[part.format(path=path, tmp=tmp_path) for part in command])
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"error: invalid config {path}: line 2, column 6: not UTF-8 text "
        "(byte 0xe9 at offset 21: invalid continuation byte)"
    ]
    assert not (tmp_path / "logs").exists()


@pytest.fixture
async def risk_url(
    endpoints: BrokerEndpoints, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[RiskManager, str]]:
    """A restored risk manager with an admin token, its HTTP server on 127.0.0.1."""
    monkeypatch.setenv("TS_RISK_ADMIN_TOKEN", TOKEN)
    spec = TradingSystemSpec(symbols=["AAPL"])
    risk = RiskManager(spec, make_settings("risk", endpoints, tmp_path), prom.CollectorRegistry())
    risk.restore()
    app = server.build_app(risk.registry, risk.readiness, risk.status, risk.routes())
    runner = await server.start(app, "127.0.0.1", 0)
    yield risk, f"http://127.0.0.1:{runner.addresses[0][1]}"
    await runner.cleanup()
    await risk.close()


async def post(url: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as session,
        session.post(url, data=body, headers=headers) as response,
    ):
        assert response.content_type == "application/json"
        return response.status, await response.json()


BAD_BODIES = {
    "not UTF-8": (b'{"reason": "caf\xe9"}', "the body must be UTF-8 JSON"),
    "not JSON": (b'{"reason": ', "the body must be UTF-8 JSON"),
    "nested too deep": (b"[" * 100_000 + b"]" * 100_000, "the body must be UTF-8 JSON"),
    "not an object": (b'["stop"]', "the body must be a JSON object"),
}


@pytest.mark.parametrize("endpoint", ["/breaker/trip", "/breaker/reset"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
async def test_breaker_endpoint_when_body_bad_then_400_with_json_error_and_nothing_changed(
    risk_url: tuple[RiskManager, str], endpoint: str, case: str
) -> None:
    risk, url = risk_url
    body, error = BAD_BODIES[case]
    if endpoint == "/breaker/reset":
        risk.engine.trip(breaker.Trigger.MANUAL, "tripped before the reset", time.time_ns())
    before = risk.state.breaker.state
    status, answer = await post(url + endpoint, body)
    assert status == 400, answer
    assert answer["error"].startswith(error), answer
    assert risk.state.breaker.state is before


async def test_breaker_trip_when_reason_not_text_then_400_and_not_tripped(
    risk_url: tuple[RiskManager, str],
) -> None:
    risk, url = risk_url
    status, answer = await post(url + "/breaker/trip", b'{"reason": 42}')
    assert (status, answer) == (400, {"error": "reason: must be a string (was int)"})
    assert risk.state.breaker.state is BreakerState.CLOSED


async def test_breaker_trip_when_charset_unknown_then_body_read_as_utf8(
    risk_url: tuple[RiskManager, str],
) -> None:
    """JSON is UTF-8 (RFC 8259): a bogus declared charset is no reason for a 500."""
    risk, url = risk_url
    body = '{"reason": "café"}'.encode()
    status, answer = await post(url + "/breaker/trip", body, "application/json; charset=bogus")
    assert status == 200, answer
    assert risk.state.breaker.state is BreakerState.OPEN
    assert risk.state.breaker.reason == "café"
