"""Bars: epoch-aligned boundaries, closing by a later trade or by the clock, no bar for an empty
interval, exact VWAP, late trades, and several timeframes built from one tape."""

from __future__ import annotations

from decimal import Decimal

from components.core.events import Bar, Trade
from components.marketdata.bars import BarBuilder

S = 1_000_000_000


def _trade(ts_ns: int, price: str, size: int = 1, symbol: str = "AAPL") -> Trade:
    return Trade(symbol=symbol, price=Decimal(price), size=Decimal(size), ts_event_ns=ts_ns)


def test_on_trade_when_later_interval_then_closes_bar_with_ohlcv() -> None:
    builder = BarBuilder(1)
    for ts_ns, price, size in [(10 * S + 1, "10", 2), (10 * S + 2, "12", 1), (10 * S + 3, "9", 1)]:
        assert builder.on_trade(_trade(ts_ns, price, size)) is None
    bar = builder.on_trade(_trade(11 * S, "11"))
    assert bar == Bar(
        symbol="AAPL",
        timeframe="1s",
        open=Decimal(10),
        high=Decimal(12),
        low=Decimal(9),
        close=Decimal(9),
        volume=Decimal(4),
        vwap=Decimal("10.25"),  # (10*2 + 12 + 9) / 4
        trade_count=3,
        ts_open_ns=10 * S,
        ts_close_ns=11 * S,
    )


def test_on_trade_when_exactly_on_boundary_then_belongs_to_next_bar() -> None:
    builder = BarBuilder(5)
    builder.on_trade(_trade(5 * S, "1"))
    builder.on_trade(_trade(10 * S - 1, "2"))
    bar = builder.on_trade(_trade(10 * S, "3"))
    assert bar is not None
    assert (bar.ts_open_ns, bar.ts_close_ns, bar.close, bar.trade_count) == (
        5 * S,
        10 * S,
        Decimal(2),
        2,
    )
    assert builder.close_all()[0].open == Decimal(3)


def test_on_trade_when_intervals_empty_then_no_bar_for_them() -> None:
    builder = BarBuilder(1)
    builder.on_trade(_trade(1 * S, "1"))
    bar = builder.on_trade(_trade(7 * S + 5, "2"))
    assert bar is not None and (bar.ts_open_ns, bar.ts_close_ns) == (1 * S, 2 * S)
    assert builder.close_due(8 * S) == [
        Bar(
            symbol="AAPL",
            timeframe="1s",
            open=Decimal(2),
            high=Decimal(2),
            low=Decimal(2),
            close=Decimal(2),
            volume=Decimal(1),
            vwap=Decimal(2),
            trade_count=1,
            ts_open_ns=7 * S,
            ts_close_ns=8 * S,
        )
    ]


def test_close_due_when_clock_before_end_then_keeps_bar_open() -> None:
    builder = BarBuilder(1)
    builder.on_trade(_trade(3 * S + 10, "1"))
    assert builder.close_due(4 * S - 1) == []
    assert [b.ts_close_ns for b in builder.close_due(4 * S)] == [4 * S]
    assert builder.close_due(5 * S) == []  # closed once only


def test_close_due_when_several_symbols_then_closes_each_own_bar() -> None:
    builder = BarBuilder(1)
    builder.on_trade(_trade(1 * S, "1", symbol="AAPL"))
    builder.on_trade(_trade(2 * S, "2", symbol="MSFT"))
    assert [(b.symbol, b.ts_open_ns) for b in builder.close_due(2 * S)] == [("AAPL", 1 * S)]
    assert [(b.symbol, b.ts_open_ns) for b in builder.close_due(3 * S)] == [("MSFT", 2 * S)]


def test_on_trade_when_older_than_closed_bar_then_dropped_as_late() -> None:
    builder = BarBuilder(1)
    builder.on_trade(_trade(1 * S, "1"))
    builder.close_due(2 * S)
    assert builder.on_trade(_trade(2 * S - 1, "5")) is None
    builder.on_trade(_trade(3 * S, "2"))
    assert builder.on_trade(_trade(2 * S + 1, "5")) is None  # before the open bar
    assert builder.late_trades == 2
    (bar,) = builder.close_all()
    assert (bar.open, bar.high, bar.trade_count) == (Decimal(2), Decimal(2), 1)


def test_vwap_when_prices_and_sizes_fractional_then_exact() -> None:
    builder = BarBuilder(60)
    tape = [("100.01", 3), ("100.02", 7), ("99.99", 11), ("100.005", 13)]
    for offset, (price, size) in enumerate(tape):
        builder.on_trade(_trade(60 * S + offset, price, size))
    (bar,) = builder.close_all()
    notional = sum(Decimal(p) * s for p, s in tape)
    volume = sum(s for _, s in tape)
    assert bar.volume == Decimal(34)
    assert bar.vwap == notional / volume
    assert notional == Decimal("3400.125")  # the sum is exact; only the division rounds


def test_builders_when_several_timeframes_then_each_closes_on_own_boundaries() -> None:
    builders = [BarBuilder(1), BarBuilder(5), BarBuilder(60, "1m")]
    closed: dict[str, list[tuple[int, int, int]]] = {b.timeframe: [] for b in builders}
    # One trade every half second from 58 s to 66 s, price = its index.
    for index in range(17):
        trade = _trade(58 * S + index * S // 2, str(index + 1))
        for builder in builders:
            bar = builder.on_trade(trade)
            if bar is not None:
                closed[bar.timeframe].append((bar.ts_open_ns // S, bar.trade_count, int(bar.close)))
    assert closed["1s"] == [(58 + k, 2, 2 * k + 2) for k in range(8)]
    assert closed["5s"] == [(55, 4, 4), (60, 10, 14)]
    assert closed["1m"] == [(0, 4, 4)]
    assert [b.ts_open_ns // S for b in builders[2].close_all()] == [60]
