"""`tradingsystem data fetch` against a local fake of Alpaca's historical API: pages followed by
token into one time-sorted Parquet file that the replay and the backtest read, 429 and 5xx retried
at the pace they ask, bad keys refused at once, bad rows skipped and counted, the request budget
kept, and an interrupted fetch resumed from its saved token without repeating a row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from components import cli
from components.backtest import data as backtest_data
from components.core.errors import ConfigError
from components.core.events import Bar, Trade
from components.marketdata import replay
from components.marketdata.fetch import Fetcher, FetchError, FetchRequest, RateLimiter
from tests.fakes import alpaca_data
from tests.fakes.alpaca_data import KEY, SECRET

HEADERS = {"APCA-API-KEY-ID": KEY, "APCA-API-SECRET-KEY": SECRET}
START = "2024-03-01T14:30:00+00:00"


class Sleeps:
    def __init__(self) -> None:
        self.slept: list[float] = []
        self.now = 0.0

    async def __call__(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def _fetcher(fake: alpaca_data.FakeAlpacaData, out: Path, **kwargs: object) -> Fetcher:
    sleeps = kwargs.pop("sleeps", Sleeps())
    request = FetchRequest(
        symbols=("MSFT", "AAPL"),
        start=START,
        end="2024-03-02T00:00:00+00:00",
        kind=str(kwargs.pop("kind", "bars")),
        limit=int(kwargs.pop("limit", 10)),  # type: ignore[call-overload]
    )
    return Fetcher(
        request,
        out,
        dict(kwargs.pop("headers", HEADERS)),  # type: ignore[call-overload]
        base_url=fake.url,
        sleep=sleeps,  # type: ignore[arg-type]
        clock=sleeps.clock,  # type: ignore[union-attr]
        **kwargs,  # type: ignore[arg-type]
    )


async def test_run_when_many_pages_then_one_sorted_file_replay_and_backtest_read(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bars.parquet"
    async with alpaca_data.running(items_per_symbol=25) as fake:
        result = await _fetcher(fake, out).run()
    assert (result.pages, result.rows, result.skipped) == (5, 50, 0)
    assert [r.get("page_token") is None for r in fake.requests] == [True] + [False] * 4
    assert not out.with_name("bars.parquet.parts").exists()
    bars = list(replay.ReplayFeed(out, speed=0).events())
    assert len(bars) == 50 and all(isinstance(b, Bar) and b.timeframe == "60s" for b in bars)
    stamps = [b.ts_open_ns for b in bars]  # type: ignore[union-attr]
    assert stamps == sorted(stamps)
    first = next(b for b in bars if b.symbol == "AAPL")
    assert isinstance(first, Bar)
    expected = fake.items("bars", "AAPL", dt.datetime.fromisoformat(START))[0]
    assert str(first.open) == str(expected["o"]) and str(first.vwap) == str(expected["vw"])
    assert backtest_data.load(out) == bars


async def test_run_when_trades_then_exact_prices_and_sizes(tmp_path: Path) -> None:
    out = tmp_path / "trades.parquet"
    async with alpaca_data.running(items_per_symbol=7) as fake:
        result = await _fetcher(fake, out, kind="trades", limit=100).run()
    trades = list(replay.ReplayFeed(out, speed=0).events())
    assert result.rows == 14 and all(isinstance(t, Trade) for t in trades)
    assert {str(t.price) for t in trades if t.symbol == "AAPL"} <= {  # type: ignore[union-attr]
        str(i["p"]) for i in fake.items("trades", "AAPL", dt.datetime(2024, 3, 1, 14, 30))
    }


async def test_run_when_429_and_500_then_waits_as_told_and_retries(tmp_path: Path) -> None:
    sleeps = Sleeps()
    async with alpaca_data.running(items_per_symbol=5) as fake:
        fake.fail(429, headers={"Retry-After": "7"})
        fake.fail(503, times=2)
        result = await _fetcher(fake, tmp_path / "b.parquet", sleeps=sleeps).run()
    assert result.rows == 10
    assert sleeps.slept == [7.0, 1.0, 2.0]  # as told, then the doubling backoff
    assert len(fake.requests) == 4


async def test_run_when_keys_wrong_then_config_error_without_retry(tmp_path: Path) -> None:
    async with alpaca_data.running() as fake:
        with pytest.raises(ConfigError, match="HTTP 403"):
            await _fetcher(
                fake, tmp_path / "b.parquet", headers={**HEADERS, "APCA-API-SECRET-KEY": "x"}
            ).run()
        assert len(fake.requests) == 1


async def test_run_when_bad_rows_then_skipped_and_counted(tmp_path: Path) -> None:
    async with alpaca_data.running(items_per_symbol=3) as fake:
        fake.bad_rows = [
            {"t": "2024-03-01T15:00:00Z", "o": -1, "h": 1, "l": 1, "c": 1, "v": 1, "n": 1, "vw": 1},
            {"t": "yesterday", "o": 1, "h": 1, "l": 1, "c": 1, "v": 1, "n": 1, "vw": 1},
            {"o": 1},
        ]
        result = await _fetcher(fake, tmp_path / "b.parquet", limit=100).run()
    assert (result.rows, result.skipped) == (6, 3)


async def test_run_when_interrupted_then_rerun_resumes_from_saved_token(tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    async with alpaca_data.running(items_per_symbol=25) as fake:
        fetcher = _fetcher(fake, out, retries=1)
        original = fetcher._write_page

        def write_then_break(page: int, body: dict) -> int:  # type: ignore[type-arg]
            rows = original(page, body)
            if page == 2:
                fake.fail(500, times=2)  # the next page fails past the retries
            return rows

        fetcher._write_page = write_then_break  # type: ignore[method-assign]
        with pytest.raises(FetchError, match="rerun to resume from page 3"):
            await fetcher.run()
        assert (out.parent / "bars.parquet.parts" / "state.json").exists()
        token = fake.requests[-1]["page_token"]
        fake.requests.clear()
        result = await _fetcher(fake, out).run()
    assert fake.requests[0]["page_token"] == token
    assert (result.resumed_from_page, result.pages, result.rows) == (2, 5, 50)
    bars = list(replay.ReplayFeed(out, speed=0).events())
    assert len({(b.symbol, b.ts_open_ns) for b in bars}) == 50  # type: ignore[union-attr]


async def test_rate_limiter_when_burst_spent_then_paces_requests() -> None:
    sleeps = Sleeps()
    limiter = RateLimiter(per_minute=60, burst=2, clock=sleeps.clock, sleep=sleeps)
    for _ in range(5):
        await limiter.acquire()
    assert sleeps.now == pytest.approx(3.0)  # two at once, then one a second


def test_cli_when_data_fetch_then_writes_file_and_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio
    import threading

    monkeypatch.setenv("APCA_API_KEY_ID", KEY)
    monkeypatch.setenv("APCA_API_SECRET_KEY", SECRET)
    ready = threading.Event()
    state: dict[str, object] = {}

    def serve() -> None:
        async def main() -> None:
            async with alpaca_data.running(items_per_symbol=4) as fake:
                state["url"] = fake.url
                stop = asyncio.Event()
                state["stop"] = (asyncio.get_running_loop(), stop)
                ready.set()
                await stop.wait()

        asyncio.run(main())

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        ready.wait(5)
        out = tmp_path / "aapl.parquet"
        code = cli.main(["data", "fetch", "--symbols", "AAPL", "--start", START, "--end",
                         "2024-03-02T00:00:00+00:00", "--out", str(out), "--url", str(state["url"]),
                         "--quiet"])  # fmt: skip
    finally:
        loop, stop = state["stop"]  # type: ignore[misc]
        loop.call_soon_threadsafe(stop.set)
        thread.join(5)
    assert code == 0
    assert f"{out}: 4 bars of AAPL in 1 pages" in capsys.readouterr().out
    assert len(list(replay.ReplayFeed(out).events())) == 4


def test_cli_when_timeframe_not_fixed_then_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["data", "fetch", "--symbols", "AAPL", "--start", "2024-03-01", "--end",
                     "2024-03-02", "--timeframe", "1Month", "--out", "x.parquet"])  # fmt: skip
    assert code == 2
    assert "--timeframe" in capsys.readouterr().err
