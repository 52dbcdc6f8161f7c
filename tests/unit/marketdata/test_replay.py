"""CSV replay: parsing of both time formats and both kinds, each reason a row is dropped,
determinism, the sample file, pacing by speed, looping and the replay clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import pytest

from components.core.events import Quote, Trade
from components.marketdata import replay
from components.marketdata.replay import DropReason, ReplayFeed

SAMPLE = Path(__file__).parents[3] / "examples" / "data" / "sample_ticks.csv"
HEADER = "ts,symbol,kind,price,size,bid_price,bid_size,ask_price,ask_size"
GOOD_QUOTE = "2024-03-01T14:30:00Z,AAPL,quote,,,189.41,600,189.43,500"
GOOD_TRADE = "2024-03-01T14:30:01Z,AAPL,trade,189.42,100,,,,"
T0_NS = 1_709_303_400_000_000_000  # 2024-03-01T14:30:00Z


def _write(tmp_path: Path, *rows: str) -> Path:
    path = tmp_path / "ticks.csv"
    path.write_text("\n".join((HEADER, *rows)) + "\n")
    return path


def _events(path: Path, symbols: set[str] | None = None) -> tuple[list[Quote | Trade], ReplayFeed]:
    feed = ReplayFeed(path, symbols)
    return list(feed.events()), feed


def test_events_when_rows_valid_then_quotes_and_trades_exact(tmp_path: Path) -> None:
    events, feed = _events(_write(tmp_path, GOOD_QUOTE, GOOD_TRADE))
    assert events == [
        Quote(
            symbol="AAPL",
            bid_price=Decimal("189.41"),
            bid_size=Decimal(600),
            ask_price=Decimal("189.43"),
            ask_size=Decimal(500),
            ts_event_ns=T0_NS,
        ),
        Trade(
            symbol="AAPL",
            price=Decimal("189.42"),
            size=Decimal(100),
            ts_event_ns=T0_NS + 1_000_000_000,
        ),
    ]
    assert not feed.dropped


@pytest.mark.parametrize(
    ("text", "expected_ns"),
    [
        ("1709303400000000001", T0_NS + 1),
        ("2024-03-01T14:30:00.123456Z", T0_NS + 123_456_000),
        ("2024-03-01T14:30:00.5", T0_NS + 500_000_000),  # no offset: UTC
        ("2024-03-01T09:30:00-05:00", T0_NS),
    ],
)
def test_parse_ts_ns_when_format_valid_then_exact_nanoseconds(text: str, expected_ns: int) -> None:
    assert replay.parse_ts_ns(text) == expected_ns


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("2024-03-01T14:30:02Z,AAPL,trade,NaN,100,,,,", DropReason.INVALID_PRICE),
        ("2024-03-01T14:30:02Z,AAPL,trade,inf,100,,,,", DropReason.INVALID_PRICE),
        ("2024-03-01T14:30:02Z,AAPL,trade,0,100,,,,", DropReason.INVALID_PRICE),
        ("2024-03-01T14:30:02Z,AAPL,trade,-1.5,100,,,,", DropReason.INVALID_PRICE),
        ("2024-03-01T14:30:02Z,AAPL,quote,,,-1,1,2,1", DropReason.INVALID_PRICE),
        ("2024-03-01T14:30:02Z,AAPL,trade,10,-5,,,,", DropReason.INVALID_SIZE),
        ("2024-03-01T14:30:02Z,AAPL,trade,10,0,,,,", DropReason.INVALID_SIZE),
        ("2024-03-01T14:30:02Z,AAPL,quote,,,10,-1,11,1", DropReason.INVALID_SIZE),
        ("2024-03-01T14:30:02Z,AAPL,quote,,,10.02,1,10.01,1", DropReason.CROSSED_QUOTE),
        ("2024-03-01T14:30:02Z,AAPL,quote,,,10.01,1,10.01,1", DropReason.CROSSED_QUOTE),
        ("yesterday,AAPL,trade,10,1,,,,", DropReason.MALFORMED),
        ("2024-03-01T14:30:02Z,AAPL,auction,10,1,,,,", DropReason.MALFORMED),
        ("2024-03-01T14:30:02Z,AAPL,trade,,1,,,,", DropReason.MALFORMED),
        ("2024-03-01T14:30:02Z,AAPL,trade,10", DropReason.MALFORMED),
        ("2024-03-01T14:30:02Z,AAPL,trade,10,1,,,,,extra", DropReason.MALFORMED),
        ("2024-03-01T14:30:02Z,ZZZZ,trade,10,1,,,,", DropReason.UNKNOWN_SYMBOL),
        ("2024-03-01T14:30:00.5Z,AAPL,trade,10,1,,,,", DropReason.TIME_BACKWARDS),
    ],
)
def test_events_when_row_bad_then_skipped_counted_and_logged(
    tmp_path: Path, row: str, reason: DropReason, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, GOOD_QUOTE, GOOD_TRADE, row, "2024-03-01T14:30:03Z,AAPL,trade,11,1,,,,")
    seen: list[DropReason] = []
    feed = ReplayFeed(path, {"AAPL", "MSFT"}, on_drop=seen.append)
    events = list(feed.events())
    assert [e.ts_event_ns for e in events] == [T0_NS, T0_NS + 10**9, T0_NS + 3 * 10**9]
    assert feed.dropped == {reason: 1}
    assert seen == [reason]
    assert f"Skipped line 4 of {path} ({reason.value})" in caplog.text


def test_events_when_time_repeats_then_kept(tmp_path: Path) -> None:
    events, feed = _events(_write(tmp_path, GOOD_QUOTE, GOOD_QUOTE))
    assert len(events) == 2 and not feed.dropped


def test_events_when_header_lacks_columns_then_raises_naming_them(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("ts,symbol,kind,price\n")
    with pytest.raises(ValueError, match=r"lacks column\(s\) size, bid_price"):
        list(ReplayFeed(path).events())


def test_events_when_sample_file_then_clean_increasing_and_deterministic() -> None:
    first, feed = _events(SAMPLE, {"AAPL", "MSFT", "SPY"})
    second, _ = _events(SAMPLE, {"AAPL", "MSFT", "SPY"})
    assert first == second
    assert len(first) == 300 and not feed.dropped
    assert {e.symbol for e in first} == {"AAPL", "MSFT", "SPY"}
    stamps = [e.ts_event_ns for e in first]
    assert stamps == sorted(set(stamps))


async def _collect(stream: AsyncIterator[Quote | Trade], n: int) -> list[Quote | Trade]:
    events: list[Quote | Trade] = []
    async with asyncio.timeout(5):
        async for event in stream:
            events.append(event)
            if len(events) == n:
                break
    return events


async def test_stream_when_speed_zero_and_no_loop_then_ends_after_one_pass(tmp_path: Path) -> None:
    feed = ReplayFeed(_write(tmp_path, GOOD_QUOTE, GOOD_TRADE), speed=0)
    events = await _collect(feed.stream(), 10)
    assert events == list(feed.events())
    assert feed.passes == 1
    assert feed.clock_ns() == T0_NS + 10**9  # the replay's clock stops at its last event


async def test_stream_when_looping_then_each_pass_shifted_forward(tmp_path: Path) -> None:
    feed = ReplayFeed(_write(tmp_path, GOOD_QUOTE, GOOD_TRADE), speed=0, loop=True)
    events = await _collect(feed.stream(), 6)
    shift_ns = 10**9 + replay.LOOP_GAP_NS
    assert [e.ts_event_ns - T0_NS for e in events] == [
        0,
        10**9,
        shift_ns,
        shift_ns + 10**9,
        2 * shift_ns,
        2 * shift_ns + 10**9,
    ]
    assert [e.price for e in events if isinstance(e, Trade)] == [Decimal("189.42")] * 3


async def test_stream_when_speed_set_then_waits_scaled_gap(tmp_path: Path) -> None:
    """Rows one second apart at speed 10 are at least ~0.1 s apart in wall time."""
    feed = ReplayFeed(_write(tmp_path, GOOD_QUOTE, GOOD_TRADE), speed=10)
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    async with asyncio.timeout(5):
        async for _ in feed.stream():
            arrivals.append(loop.time())
            clock_ns = feed.clock_ns()
            assert T0_NS <= clock_ns <= T0_NS + 10**9  # never past the event just emitted
    assert arrivals[1] - arrivals[0] >= 0.09


def test_events_when_parquet_trades_and_quotes_then_same_events_as_written(
    tmp_path: Path,
) -> None:
    from components.marketdata import parquet

    trades = [
        Trade(symbol="AAPL", price=Decimal("189.42"), size=Decimal(100), ts_event_ns=T0_NS),
        Trade(symbol="MSFT", price=Decimal("410.005"), size=Decimal("0.5"), ts_event_ns=T0_NS + 1),
    ]
    quotes = [
        Quote(
            symbol="AAPL",
            bid_price=Decimal("189.41"),
            bid_size=Decimal(6),
            ask_price=Decimal("189.43"),
            ask_size=Decimal(5),
            ts_event_ns=T0_NS,
        )
    ]
    parquet.write(tmp_path / "trades.parquet", parquet.trades_table(trades))
    parquet.write(tmp_path / "quotes.parquet", parquet.quotes_table(quotes))
    assert list(ReplayFeed(tmp_path / "trades.parquet").events()) == trades
    assert list(ReplayFeed(tmp_path / "quotes.parquet").events()) == quotes


def test_events_when_parquet_rows_bad_then_skipped_and_counted(tmp_path: Path) -> None:
    import pyarrow as pa

    from components.marketdata import parquet

    table = pa.Table.from_pydict(
        {
            "ts_ns": [T0_NS, T0_NS + 1, T0_NS - 5, T0_NS + 2, T0_NS + 3],
            "symbol": ["AAPL", "AAPL", "AAPL", "TSLA", "AAPL"],
            "price": ["10", "NaN", "11", "12", "13"],
            "size": ["1", "1", "1", "1", "-1"],
        },
        schema=parquet.TRADE_SCHEMA,
    )
    parquet.write(tmp_path / "t.parquet", table)
    feed = ReplayFeed(tmp_path / "t.parquet", {"AAPL"})
    assert [e.price for e in feed.events()] == [Decimal(10)]  # type: ignore[union-attr]
    assert feed.dropped == {
        DropReason.INVALID_PRICE: 1,
        DropReason.TIME_BACKWARDS: 1,
        DropReason.UNKNOWN_SYMBOL: 1,
        DropReason.INVALID_SIZE: 1,
    }


def test_init_when_parquet_holds_unknown_columns_then_value_error(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(
        pa.table({"ts_ns": [1], "symbol": ["AAPL"], "colour": ["red"]}), tmp_path / "x.parquet"
    )
    with pytest.raises(ValueError, match="neither bars, quotes nor trades"):
        ReplayFeed(tmp_path / "x.parquet")


def test_events_when_csv_bars_then_bars_with_timeframe(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv"
    columns = ",".join((HEADER, *replay.BAR_COLUMNS))
    path.write_text(
        f"{columns}\n"
        "2024-03-01T14:30:00Z,AAPL,bar,,,,,,,1m,10,11,9.5,10.5,1200,10.2,31\n"
        "2024-03-01T14:31:00Z,AAPL,bar,,,,,,,1m,10,9,9.5,10.5,1200,10.2,31\n"  # high < open
        "2024-03-01T14:32:00Z,AAPL,bar,,,,,,,2x,10,11,9.5,10.5,1200,10.2,31\n"
    )
    feed = ReplayFeed(path)
    (bar,) = feed.events()
    assert (bar.timeframe, bar.high, bar.trade_count) == ("1m", Decimal(11), 31)  # type: ignore[union-attr]
    assert (bar.ts_open_ns, bar.ts_close_ns) == (T0_NS, T0_NS + 60 * 10**9)  # type: ignore[union-attr]
    assert feed.dropped == {DropReason.INVALID_BAR: 1, DropReason.MALFORMED: 1}
