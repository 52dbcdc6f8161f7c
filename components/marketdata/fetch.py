"""`tradingsystem data fetch`: download bars or trades from Alpaca's historical market-data API into
one Parquet file (layout of `marketdata.parquet`) that the replay and the backtest read.

    tradingsystem data fetch --symbols AAPL,MSFT --start 2024-03-01 --end 2024-03-02 \\
        --kind bars --timeframe 1Min --out data/aapl-msft-1min.parquet

The API (`GET /v2/stocks/bars` or `/v2/stocks/trades`) answers pages sorted by symbol, then time,
each with a `next_page_token` until the last. Each page is written to its own part file beside the
output (`<out>.parts/page-NNNNNN.parquet`), then the token of the next page is saved in
`<out>.parts/state.json`: an interrupted fetch started again with the same arguments resumes from
the saved token (a page fetched twice overwrites its own part file, so nothing is repeated). At the
end the parts are merged, sorted by time, into the output, and the parts removed.

Requests are paced by a token bucket (`--rate-per-minute`, Alpaca's free plan allows 200). A 429
waits until the window resets (`X-RateLimit-Reset`, else `Retry-After`, else the backoff), a 5xx or
a dropped connection retries on a doubling backoff, up to `--retries` times in a row; 401 and 403
stop at once (wrong keys or plan), as does any other 4xx (a wrong argument), with the API's
message. Rows with a bad price, size or time are skipped, counted and reported at the end.
Keys come from APCA_API_KEY_ID / APCA_API_SECRET_KEY and are sent only as request headers.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from components.core.errors import ConfigError, TradingSystemError

log = logging.getLogger(__name__)

DEFAULT_URL = "https://data.alpaca.markets"
PAGE_LIMIT = 10_000  # the API's largest page
_TIMEFRAME = re.compile(r"^([1-9][0-9]{0,2})(Min|Hour|Day)$")
_UNIT_S = {"Min": 60, "Hour": 3600, "Day": 86_400}


class FetchError(TradingSystemError, RuntimeError):
    """The download stopped; what was fetched so far is kept and a rerun resumes it."""


@dataclasses.dataclass(frozen=True)
class FetchRequest:
    symbols: tuple[str, ...]
    start: str
    end: str
    kind: str = "bars"  # or "trades"
    timeframe: str = "1Min"
    feed: str = "iex"
    adjustment: str = "raw"
    limit: int = PAGE_LIMIT

    def params(self) -> dict[str, str]:
        params = {
            "symbols": ",".join(self.symbols),
            "start": self.start,
            "end": self.end,
            "limit": str(self.limit),
            "feed": self.feed,
            "sort": "asc",
        }
        if self.kind == "bars":
            params["timeframe"] = self.timeframe
            params["adjustment"] = self.adjustment
        return params


def timeframe_name(timeframe: str) -> str:
    """Alpaca's `5Min` as our bar timeframe name `300s`; ValueError for one of no fixed length."""
    match = _TIMEFRAME.match(timeframe)
    if match is None:
        raise ValueError(f"timeframe {timeframe!r}: expected like 1Min, 15Min, 1Hour or 1Day")
    return f"{int(match[1]) * _UNIT_S[match[2]]}s"


class RateLimiter:
    """A token bucket: `per_minute` requests a minute, in bursts of at most `burst`."""

    def __init__(
        self,
        per_minute: float,
        burst: int = 10,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate_per_s = per_minute / 60
        self.burst = burst
        self.tokens = float(burst)
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    async def acquire(self) -> None:
        while True:
            now = self._clock()
            self.tokens = min(self.burst, self.tokens + (now - self._last) * self.rate_per_s)
            self._last = now
            if self.tokens >= 1:
                self.tokens -= 1
                return
            await self._sleep((1 - self.tokens) / self.rate_per_s)


@dataclasses.dataclass
class FetchResult:
    rows: int = 0
    pages: int = 0
    skipped: int = 0
    resumed_from_page: int = 0


class Fetcher:
    """One download. `sleep`/`clock` are injectable so that tests do not wait out the limits."""

    def __init__(
        self,
        request: FetchRequest,
        out: Path,
        headers: dict[str, str],
        *,
        base_url: str = DEFAULT_URL,
        rate_per_minute: float = 200,
        retries: int = 5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
        on_page: Callable[[int, int], None] | None = None,
    ) -> None:
        self.request = request
        self.out = Path(out)
        self.parts = self.out.with_name(f"{self.out.name}.parts")
        self.base_url = base_url.rstrip("/")
        self.retries = retries
        self.limiter = RateLimiter(rate_per_minute, clock=clock, sleep=sleep)
        self.result = FetchResult()
        self._headers = headers
        self._sleep = sleep
        self._on_page = on_page
        self._bar_timeframe = timeframe_name(request.timeframe) if request.kind == "bars" else ""

    async def run(self) -> FetchResult:
        import aiohttp

        state = self._load_state()
        token: str | None = state.get("next_page_token")
        page = int(state.get("pages", 0))
        self.result.resumed_from_page = page
        if page and token is None:
            return self._finish(page)  # every page fetched; only the merge was left
        timeout = aiohttp.ClientTimeout(total=60)
        async with aiohttp.ClientSession(timeout=timeout, headers=self._headers) as session:
            while True:
                body = await self._get(session, token)
                page += 1
                rows = self._write_page(page, body)
                token = body.get("next_page_token") or None
                self._save_state({"pages": page, "next_page_token": token})
                self.result.pages = page
                if self._on_page is not None:
                    self._on_page(page, rows)
                if token is None:
                    break
        return self._finish(page)

    # --- HTTP ----------------------------------------------------------------------------------

    async def _get(self, session: Any, token: str | None) -> dict[str, Any]:
        import aiohttp

        params = self.request.params()
        if token:
            params["page_token"] = token
        url = f"{self.base_url}/v2/stocks/{self.request.kind}"
        delay_s = 1.0
        for attempt in range(self.retries + 1):
            await self.limiter.acquire()
            try:
                async with session.get(url, params=params) as response:
                    text = await response.text()
                    if response.status == 200:
                        # Numbers as the decimals they were written as, never via a float.
                        body = json.loads(text, parse_float=Decimal)
                        if not isinstance(body, dict):
                            raise FetchError(f"GET {url}: answer is not a JSON object")
                        return body
                    wait_s = self._failure(response.status, response.headers, text, url)
            except (aiohttp.ClientError, TimeoutError, json.JSONDecodeError) as exc:
                wait_s = None
                why = f"{type(exc).__name__}: {exc}"
            else:
                why = f"HTTP {response.status}"
            if attempt == self.retries:
                raise FetchError(
                    f"GET {url}: {why}, {self.retries + 1} tries; rerun to resume from page "
                    f"{self.result.pages + 1}"
                )
            if wait_s is None:  # the server did not say: our backoff decides, and doubles
                wait_s, delay_s = delay_s, min(delay_s * 2, 60)
            log.warning("GET %s: %s; retrying in %.1f s.", url, why, wait_s)
            await self._sleep(wait_s)
        raise AssertionError("unreachable")

    def _failure(self, status: int, headers: Any, text: str, url: str) -> float | None:
        """Seconds to wait before retrying (None: the backoff decides); raises if hopeless."""
        if status == 429:
            reset = headers.get("X-RateLimit-Reset")
            retry_after = headers.get("Retry-After")
            if reset is not None and reset.isdigit():
                return max(1.0, int(reset) - time.time())
            if retry_after is not None and retry_after.isdigit():
                return float(retry_after)
            return None
        if status >= 500:
            return None
        message = _api_message(text)
        if status in (401, 403):
            raise ConfigError(
                "alpaca", [f"GET {url}: HTTP {status} ({message}): check the keys and the plan"]
            )
        raise FetchError(f"GET {url}: HTTP {status}: {message}")

    # --- files ---------------------------------------------------------------------------------

    def _write_page(self, page: int, body: dict[str, Any]) -> int:
        from components.marketdata import parquet

        table = self._table(body)
        parquet.write(self.parts / f"page-{page:06d}.parquet", table)
        self.result.rows += table.num_rows
        return table.num_rows

    def _table(self, body: dict[str, Any]) -> Any:
        from components.core.events import Bar, Trade
        from components.marketdata import parquet
        from components.marketdata.alpaca.protocol import parse_time_ns
        from components.marketdata.validation import content_error

        by_symbol = body.get(self.request.kind) or {}
        bars: list[Bar] = []
        trades: list[Trade] = []
        if not isinstance(by_symbol, dict):
            raise FetchError(f"answer's {self.request.kind!r} is not an object of symbols")
        for symbol, items in by_symbol.items():
            for item in items or ():
                try:
                    ts_ns = parse_time_ns(item["t"])
                    if self.request.kind == "bars":
                        event: Bar | Trade = Bar(
                            symbol=symbol,
                            timeframe=self._bar_timeframe,
                            open=_exact(item["o"]),
                            high=_exact(item["h"]),
                            low=_exact(item["l"]),
                            close=_exact(item["c"]),
                            volume=_exact(item["v"]),
                            vwap=_exact(item.get("vw", item["c"])),
                            trade_count=int(item.get("n", 0)),
                            ts_open_ns=ts_ns,
                            ts_close_ns=ts_ns + int(self._bar_timeframe[:-1]) * 1_000_000_000,
                        )
                    else:
                        event = Trade(
                            symbol=symbol,
                            price=_exact(item["p"]),
                            size=_exact(item["s"]),
                            ts_event_ns=ts_ns,
                        )
                    problem = content_error(event)
                    if problem is not None:
                        raise ValueError(problem[1])
                except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                    self.result.skipped += 1
                    log.warning("Skipped a %s row of %s: %s.", self.request.kind, symbol, exc)
                    continue
                (bars if isinstance(event, Bar) else trades).append(event)  # type: ignore[arg-type]
        return (
            parquet.bars_table(bars)
            if self.request.kind == "bars"
            else parquet.trades_table(trades)
        )

    def _finish(self, pages: int) -> FetchResult:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from components.marketdata import parquet

        files = [self.parts / f"page-{n:06d}.parquet" for n in range(1, pages + 1)]
        tables = [pq.read_table(path) for path in files]
        table = pa.concat_tables(tables) if tables else None
        if table is None:
            raise FetchError("nothing was fetched")
        # Pages come symbol by symbol; replay and backtest want one time line.
        table = table.sort_by([("ts_ns", "ascending"), ("symbol", "ascending")])
        parquet.write(self.out, table)
        self.result.rows = table.num_rows
        self.result.pages = pages
        shutil.rmtree(self.parts)
        return self.result

    def _load_state(self) -> dict[str, Any]:
        path = self.parts / "state.json"
        if not path.exists():
            return {}
        state = json.loads(path.read_text())
        if state.get("request") != self._request_document():
            raise FetchError(
                f"{self.parts} holds a fetch with other arguments; remove it to start afresh"
            )
        log.info("Resuming %s after page %d.", self.out, state.get("pages", 0))
        return state

    def _request_document(self) -> dict[str, Any]:
        return dataclasses.asdict(self.request) | {"symbols": list(self.request.symbols)}

    def _save_state(self, state: dict[str, Any]) -> None:
        document = {"request": self._request_document(), **state}
        path = self.parts / "state.json"
        partial = path.with_name(".state.json.partial")
        partial.write_text(json.dumps(document))
        partial.replace(path)


def _exact(value: Any) -> Decimal:
    from components.core import money

    if isinstance(value, bool):
        raise TypeError(f"not a number: {value!r}")
    return money.to_decimal(value)


def _api_message(text: str) -> str:
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        return text[:200]
    return str(body.get("message", body)) if isinstance(body, dict) else text[:200]


# --- the command --------------------------------------------------------------------------------


def add_parser(commands: Any) -> None:
    """Register `data fetch` on the `tradingsystem` subcommands."""
    data = commands.add_parser("data", help="historical market data")
    verbs = data.add_subparsers(dest="data_command", required=True)
    fetch = verbs.add_parser(
        "fetch", help="download bars or trades from Alpaca into a Parquet file"
    )
    fetch.add_argument("--symbols", required=True, help="comma-separated, e.g. AAPL,MSFT")
    fetch.add_argument("--start", required=True, help="RFC-3339 time or date, e.g. 2024-03-01")
    fetch.add_argument("--end", required=True, help="RFC-3339 time or date (inclusive)")
    fetch.add_argument("--kind", choices=("bars", "trades"), default="bars")
    fetch.add_argument("--timeframe", default="1Min", help="bars: 1Min, 5Min, 1Hour, 1Day, ...")
    fetch.add_argument("--feed", choices=("iex", "sip"), default="iex")
    fetch.add_argument("--out", type=Path, required=True, help="the Parquet file to write")
    fetch.add_argument("--url", default=DEFAULT_URL, help="API base URL")
    fetch.add_argument("--rate-per-minute", type=float, default=200, help="request budget")
    fetch.add_argument("--retries", type=int, default=5, help="retries of one page in a row")
    fetch.add_argument("--quiet", action="store_true", help="no progress bar")


def main(args: argparse.Namespace) -> int:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from components.runtime.credentials import AlpacaCredentials

    symbols = tuple(s.strip().upper() for s in args.symbols.split(",") if s.strip())
    if not symbols:
        raise ConfigError("arguments", ["--symbols: no symbol given"])
    if args.kind == "bars":
        try:
            timeframe_name(args.timeframe)
        except ValueError as exc:
            raise ConfigError("arguments", [f"--timeframe: {exc}"]) from None
    request = FetchRequest(
        symbols=symbols,
        start=args.start,
        end=args.end,
        kind=args.kind,
        timeframe=args.timeframe,
        feed=args.feed,
    )
    headers = AlpacaCredentials.from_env().headers()
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        TextColumn("{task.fields[pages]} pages, {task.completed:,.0f} rows"),
        TimeElapsedColumn(),
        disable=args.quiet,
    ) as progress:
        task = progress.add_task(f"Fetching {args.kind}", total=None, pages=0)

        def on_page(page: int, rows: int) -> None:
            progress.update(task, advance=rows, pages=page)

        fetcher = Fetcher(
            request,
            args.out,
            headers,
            base_url=args.url,
            rate_per_minute=args.rate_per_minute,
            retries=args.retries,
            on_page=on_page,
        )
        result = asyncio.run(fetcher.run())
    print(
        f"{args.out}: {result.rows} {args.kind} of {', '.join(symbols)} in {result.pages} pages"
        + (f" (resumed after page {result.resumed_from_page})" if result.resumed_from_page else "")
        + (f"; {result.skipped} bad rows skipped" if result.skipped else "")
    )
    return 0
