"""Alpaca's Trading REST API, with every outcome translated into the venue errors once, here.

2xx                                   the body
404 on a lookup                       None
422 "client_order_id must be unique"  DuplicateClientOrderId (the order is there)
400, 401, 403, 422 (any other)        OrderRefused("HTTP 403 40310000: insufficient ...")
429                                   RateLimited, retry after `Retry-After` if present, else
                                      `X-Ratelimit-Reset` (Unix seconds) minus now
5xx                                   VenueUnavailable
refused connection                    VenueUnavailable (nothing was sent)
timeout, connection lost mid-request  OutcomeUnknown (the venue may have acted)
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from components.execution.venues.base import (
    DuplicateClientOrderId,
    OrderRefused,
    OutcomeUnknown,
    RateLimited,
    VenueError,
    VenueUnavailable,
)
from components.runtime.credentials import AlpacaCredentials

log = logging.getLogger(__name__)
NOT_UNIQUE = "client_order_id must be unique"


def retry_after_s(headers: Any, now_s: float) -> float | None:
    """When a 429 says to come back, in seconds from now; None if it does not say."""
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            pass
    reset = headers.get("X-Ratelimit-Reset")
    if reset:
        try:
            return max(0.0, float(reset) - now_s)
        except ValueError:
            pass
    return None


def _message(body: Any) -> str:
    if isinstance(body, dict) and "message" in body:
        return f"{body.get('code', '')} {body['message']}".strip()
    return str(body)[:200]


class AlpacaClient:
    def __init__(
        self,
        base_url: str,
        credentials: AlpacaCredentials,
        timeout_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self.timeout_s = timeout_s
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self._credentials.headers(),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            )
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        lookup: bool = False,
    ) -> Any:
        """The decoded body of a 2xx answer (None for 204, or for a 404 when `lookup`)."""
        what = f"{method} {path}"
        try:
            async with self.session().request(
                method, self.base_url + path, json=body, params=params
            ) as response:
                status = response.status
                # Bytes decoded leniently: a body in a wrong charset is a parse error later,
                # not a UnicodeDecodeError here.
                text = (await response.read()).decode("utf-8", errors="replace")
                headers = response.headers
        except aiohttp.ClientConnectorError as exc:
            raise VenueUnavailable(f"{what}: cannot connect: {exc.os_error}") from exc
        except TimeoutError as exc:
            raise OutcomeUnknown(f"{what}: no answer within {self.timeout_s:g} s") from exc
        except aiohttp.ClientError as exc:
            # The request may have reached the venue before the connection went.
            raise OutcomeUnknown(f"{what}: connection lost: {type(exc).__name__}") from exc
        try:
            decoded = json.loads(text) if text else None
        except (json.JSONDecodeError, RecursionError):
            decoded = text  # not JSON: the parsers refuse it, naming the endpoint
        if 200 <= status < 300:
            return decoded
        message = f"{what}: HTTP {status} {_message(decoded)}"
        if status == 404 and lookup:
            return None
        if status == 429:
            raise RateLimited(message, retry_after_s=retry_after_s(headers, self.clock()))
        if status >= 500:
            raise VenueUnavailable(message)
        if status == 422 and NOT_UNIQUE in message:
            raise DuplicateClientOrderId(message)
        if status in (400, 401, 403, 422):
            raise OrderRefused(f"HTTP {status} {_message(decoded)}")
        raise VenueError(message)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
