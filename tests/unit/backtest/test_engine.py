"""The backtest engine on bars small enough to compute by hand: three known round trips matched to
the cent (fraction sizing at the fill price net of fees, fixed + rate commission on entry and exit,
flip on an opposite signal, no pyramiding, close at the end); fill at this bar's close with a
spread and slippage; fixed sizing; no shorting; close-only; the risk limits rejecting; and
determinism (byte-identical JSON)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pydantic
import pytest
from pydantic import BaseModel, ConfigDict

from components.backtest import results, stats
from components.backtest import risk as gates
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest, BacktestRun, Event
from components.core.config import RiskConfig
from components.core.errors import ConfigError
from components.core.events import Bar, Fill, Quote, Side
from components.core.events import Trade as TradePrint
from components.strategy.base import Intent, Strategy, load_strategy

D = Decimal
DAY_NS = 86_400 * 1_000_000_000
START_NS = 1_704_067_200 * 1_000_000_000  # 2024-01-01


class ScriptedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    signals: dict[int, Side]  # bar index -> side


class Scripted(Strategy):
    """Signals on given bars, whatever the prices; records the fills it is told about."""

    name = "scripted"
    Params = ScriptedParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, ScriptedParams)
        super().__init__(params)
        self.signals = params.signals
        self.seen = 0
        self.fills: list[Fill] = []

    def on_bar(self, bar: Bar) -> Intent | None:
        index, self.seen = self.seen, self.seen + 1
        side = self.signals.get(index)
        return None if side is None else Intent(bar.symbol, side, f"bar {index}")

    def on_fill(self, fill: Fill) -> Intent | None:
        self.fills.append(fill)
        return None


def bars(prices: list[tuple[str, str]], symbol: str = "AAPL") -> list[Bar]:
    """Daily bars from (open, close); high and low are the larger and the smaller."""
    out = []
    for i, (o, c) in enumerate(prices):
        op, cl = D(o), D(c)
        out.append(
            Bar(
                symbol=symbol,
                timeframe="86400s",
                open=op,
                high=max(op, cl),
                low=min(op, cl),
                close=cl,
                volume=D(1000),
                vwap=cl,
                trade_count=1,
                ts_open_ns=START_NS + i * DAY_NS,
                ts_close_ns=START_NS + (i + 1) * DAY_NS,
            )
        )
    return out


def run(
    prices: list[tuple[str, str]], signals: dict[int, str], **config: Any
) -> tuple[BacktestRun, Scripted]:
    strategy = load_strategy(
        f"{__name__}:Scripted", {"signals": {str(k): v for k, v in signals.items()}}
    )
    assert isinstance(strategy, Scripted)
    return Backtest(strategy, BacktestConfig(**config)).run(bars(prices)), strategy


# Long from 100 to 120, short from 120 to 90, long from 90 to 85 (closed at the end).
THREE_TRADES = [
    ("100", "100"),
    ("100", "100"),  # 1: buy
    ("100", "110"),  # 2: the buy fills at this open, 100
    ("110", "110"),  # 3: sell (flip)
    ("120", "120"),  # 4: close the long and open a short at 120
    ("120", "120"),  # 5: sell again: already short, nothing
    ("120", "120"),  # 6: buy (flip)
    ("90", "95"),  # 7: close the short and open a long at 90
    ("95", "85"),  # 8: the end: the long closes at this close, 85
]
THREE_SIGNALS = {1: "buy", 3: "sell", 5: "sell", 6: "buy"}
HAND = {
    "initial_cash": "10000",
    "sizing": "fraction",
    "fraction": "0.5",
    "commission_per_order": "1",
    "commission_rate": "0.001",
    "allow_short": True,
}


def test_run_when_three_known_trades_then_every_figure_matches_hand_to_the_cent() -> None:
    """By hand: equity 10,000, half of it per entry, fee 1 + 0.1 % of value on each fill.
    1. buy at 100: (5000 - 1) / 100.1 -> 49 units, fee 5.90; sell at 120: fee 6.88;
       pnl 49 x 20 - 12.78 = 967.22; equity 10,967.22.
    2. short at 120: (5483.61 - 1) / 120.12 -> 45 units, fee 6.40; cover at 90: fee 5.05;
       pnl 45 x 30 - 11.45 = 1,338.55; equity 12,305.77.
    3. buy at 90: (6152.885 - 1) / 90.09 -> 68 units, fee 7.12; sell at 85 (end): fee 6.78;
       pnl 68 x -5 - 13.90 = -353.90; equity 11,951.87."""
    done, strategy = run(THREE_TRADES, THREE_SIGNALS, **HAND)
    trips = [
        (t.side, t.quantity, t.entry_price, t.exit_price, t.fees, t.pnl) for t in done.round_trips
    ]
    assert trips == [
        (Side.BUY, D(49), D(100), D(120), D("12.780"), D("967.220")),
        (Side.SELL, D(45), D(120), D(90), D("11.450"), D("1338.550")),
        (Side.BUY, D(68), D(90), D(85), D("13.900"), D("-353.900")),
    ]
    assert [t.entry_ts_ns for t in done.round_trips] == [
        START_NS + 2 * DAY_NS,  # the open of bar 2
        START_NS + 4 * DAY_NS,
        START_NS + 7 * DAY_NS,
    ]
    assert done.round_trips[-1].exit_ts_ns == START_NS + 9 * DAY_NS  # bar 8's close
    assert done.book.cash == D("11951.870") and done.book.quantity("AAPL") == 0
    figures = stats.compute(done)
    assert figures["final_equity"] == "11951.87"
    assert figures["net_pnl"] == "1951.87"
    assert figures["commissions"] == "38.13"
    assert figures["trades"] == 3
    assert figures["win_rate"] == 2 / 3
    assert figures["expectancy"] == "650.62"
    assert abs(figures["profit_factor"] - float(D("2305.770") / D("353.900"))) < 1e-12
    assert figures["fills"] == 6 and figures["rejected_orders"] == 0
    assert abs(figures["total_return"] - 0.195187) < 1e-12
    assert len(strategy.fills) == 6  # the strategy hears of every fill


def test_run_when_bars_then_equity_curve_marks_each_close_and_drawdown_follows_it() -> None:
    done, _ = run(THREE_TRADES, THREE_SIGNALS, **HAND)
    curve = [(p.ts_ns, p.equity, p.exposed) for p in done.equity]
    assert len(curve) == len(THREE_TRADES)
    # Bar 2 closes at 110 holding 49 from 100: 5094.10 cash + 49 x 110.
    assert curve[2] == (START_NS + 3 * DAY_NS, D("5094.100") + 49 * D(110), True)
    assert curve[0][1:] == (D(10000), False)
    assert curve[-1][1:] == (D("11951.870"), False)
    # Short 45 at 120 from bar 4 to 6: cash 16,360.82 less 45 x 120 to buy back.
    assert [p[1] for p in curve[4:7]] == [D("16360.820") - 45 * D(120)] * 3
    # The peak is bar 7's close, 12,638.65 (cash 6,178.65, long 68 at 95); the end is below it.
    peak = D("6178.650") + 68 * D(95)
    assert curve[7][1] == peak
    figures = stats.compute(done)
    assert abs(figures["max_drawdown"] - float(1 - D("11951.870") / peak)) < 1e-15
    assert figures["max_drawdown_duration_s"] == 86_400
    assert figures["exposure"] == 6 / 9


def test_run_when_fill_at_close_with_spread_and_slippage_then_buys_above_and_sells_below() -> None:
    done, _ = run(
        [("10", "10"), ("10", "20"), ("20", "30"), ("30", "25")],
        {1: "buy", 3: "sell"},
        fill="close",
        spread_bps="20",  # 0.1 % either side
        slippage_bps="10",
        quantity="3",
    )
    (trip,) = done.round_trips
    # Buy at the ask, 20 + 0.02 (half spread), + 0.1 % slippage = 20.04002, up to the tick;
    # sell at the bid, 25 - 0.025, - 0.1 % = 24.950025, down to the tick.
    assert trip.entry_price == D("20.05")
    assert trip.exit_price == D("24.95")
    assert trip.quantity == 3 and trip.fees == 0
    assert trip.pnl == 3 * (trip.exit_price - trip.entry_price)
    assert trip.entry_ts_ns == START_NS + 2 * DAY_NS  # bar 1's close


def test_run_when_shorting_not_allowed_then_sell_only_closes() -> None:
    done, _ = run(THREE_TRADES, THREE_SIGNALS, allow_short=False, quantity="2")
    sides = [(t.side, t.entry_price, t.exit_price) for t in done.round_trips]
    assert sides == [(Side.BUY, D(100), D(120)), (Side.BUY, D(90), D(85))]


def test_run_when_close_only_then_opposite_signal_flattens_without_reversing() -> None:
    done, _ = run(THREE_TRADES, THREE_SIGNALS, allow_short=True, on_opposite="close")
    sides = [(t.side, t.entry_price, t.exit_price) for t in done.round_trips]
    # bar 3 sell closes the long; bar 5 sell opens a short at 120 (flat then); bar 6 buy closes.
    assert sides == [(Side.BUY, D(100), D(120)), (Side.SELL, D(120), D(90))]
    assert done.book.quantity("AAPL") == 0


def test_run_when_order_above_max_position_then_rejected_by_risk_limit() -> None:
    done, _ = run(THREE_TRADES, {1: "buy"}, quantity="150", max_position="100")
    assert done.round_trips == [] and done.fills == []
    (rejected,) = done.rejected
    assert rejected.reason.startswith("POSITION_LIMIT_EXCEEDED: symbol=AAPL, position=150")


def test_run_when_equity_cannot_buy_one_unit_then_rejected_as_insufficient() -> None:
    done, _ = run(THREE_TRADES, {1: "buy"}, initial_cash="50", sizing="fraction")
    assert done.fills == []
    assert [r.reason for r in done.rejected] == ["INSUFFICIENT_EQUITY"]


def test_run_when_repeated_then_json_byte_identical() -> None:
    first, _ = run(THREE_TRADES, THREE_SIGNALS, **HAND)
    second, _ = run(THREE_TRADES, THREE_SIGNALS, **HAND)
    one = results.to_json(results.summary(first, {"a": 1}))
    assert one == results.to_json(results.summary(second, {"a": 1}))
    assert '"final_equity": "11951.87"' in one


def test_run_when_fraction_sizing_with_slippage_then_units_fit_at_the_slipped_price() -> None:
    done, _ = run(
        [("100", "100"), ("100", "100"), ("100", "100")],
        {0: "buy"},
        fill="close",
        sizing="fraction",
        initial_cash="10000",
        slippage_bps="10",
    )
    # 10,000 at 100: 100 units; at the slipped 100.10 only 99 fit.
    buy = done.fills[0]
    assert (buy.side, buy.quantity, buy.price) == (Side.BUY, D(99), D("100.10"))
    assert done.book.cash >= 0


class QuoteFollower(Strategy):
    """Buys when the spread is one cent or less, sells when it widens; every 60 s of simulated
    time it records the timer's time."""

    name = "quote_follower"
    Params = ScriptedParams
    timer_interval_s = 60.0

    def __init__(self, params: pydantic.BaseModel) -> None:
        super().__init__(params)
        self.timer_ticks: list[int] = []

    def on_bar(self, bar: Bar) -> Intent | None:
        return None

    def on_quote(self, quote: Quote) -> Intent | None:
        spread = quote.ask_price - quote.bid_price
        return Intent(quote.symbol, Side.BUY if spread <= D("0.01") else Side.SELL, "spread")

    def on_trade(self, trade: TradePrint) -> Intent | None:
        return Intent(trade.symbol, Side.BUY if trade.size > 50 else Side.SELL, "size")

    def on_timer(self, ts_ns: int) -> Intent | None:
        self.timer_ticks.append(ts_ns)
        return None


def _quote(bid: str, ask: str, ts_s: int) -> Quote:
    return Quote(
        symbol="AAPL",
        bid_price=D(bid),
        bid_size=D(100),
        ask_price=D(ask),
        ask_size=D(100),
        ts_event_ns=ts_s * 10**9,
    )


def test_run_when_quotes_then_fills_at_the_quote_and_timers_fire_on_simulated_time() -> None:
    strategy = QuoteFollower(ScriptedParams(signals={}))
    quotes = [
        _quote("9.99", "10.00", 30),  # tight: buy at the ask, 10.00
        _quote("9.98", "10.01", 95),  # wide: sell at the bid, 9.98
        _quote("10.50", "10.51", 200),  # tight: buy at 10.51; closed at the end at 10.50
    ]
    done = Backtest(strategy, BacktestConfig(fill="quote", quantity=D(2))).run(quotes)
    assert [(f.side, f.price, f.ts_event_ns) for f in done.fills] == [
        (Side.BUY, D("10.00"), 30 * 10**9),
        (Side.SELL, D("9.98"), 95 * 10**9),
        (Side.BUY, D("10.51"), 200 * 10**9),
        (Side.SELL, D("10.50"), 200 * 10**9),
    ]
    assert [t.pnl for t in done.round_trips] == [D("-0.04"), D("-0.02")]
    # The first event starts the clock; ticks at 60, 120 and 180 s (not at 30 s).
    assert strategy.timer_ticks == [60 * 10**9, 120 * 10**9, 180 * 10**9]
    # Equity marks at the mid: after the first buy, 2 x 9.995 plus the cash.
    assert done.equity[0].equity == D(100_000) - D("20.00") + 2 * D("9.995")


def test_run_when_trades_then_fills_at_the_trade_price_with_the_spread() -> None:
    strategy = QuoteFollower(ScriptedParams(signals={}))
    trades = [
        TradePrint(symbol="AAPL", price=D(20), size=D(100), ts_event_ns=1),
        TradePrint(symbol="AAPL", price=D(21), size=D(10), ts_event_ns=2),
    ]
    config = BacktestConfig(fill="quote", spread_bps=D(10), close_at_end=False)
    done = Backtest(strategy, config).run(trades)
    # Half of 10 bp either side: buy at 20.01, sell at 20.98950.
    assert [(f.side, f.price) for f in done.fills] == [
        (Side.BUY, D("20.010")),
        (Side.SELL, D("20.98950")),
    ]


def test_run_when_two_symbols_then_one_equity_point_per_time_and_each_symbol_trades() -> None:
    spy = bars([("10", "10"), ("10", "11"), ("11", "12")], symbol="SPY")
    qqq = bars([("20", "20"), ("20", "19"), ("19", "18")], symbol="QQQ")
    events = sorted(spy + qqq, key=lambda b: b.ts_close_ns)  # SPY, QQQ at each close
    strategy = load_strategy(f"{__name__}:Scripted", {"signals": {"0": "buy", "1": "buy"}})
    done = Backtest(strategy, BacktestConfig(fill="close")).run(events)
    assert len(done.equity) == 3
    assert {t.symbol for t in done.round_trips} == {"SPY", "QQQ"}
    by_symbol = {t.symbol: (t.entry_price, t.exit_price) for t in done.round_trips}
    assert by_symbol == {"SPY": (D(10), D(12)), "QQQ": (D(20), D(18))}
    assert done.equity[-1].equity == D(100_000) + 2 - 2


@pytest.mark.parametrize(
    ("fill", "events", "message"),
    [
        ("quote", bars([("1", "1")]), "fill: quote cannot fill orders on bars; use next_open"),
        ("next_open", [_quote("1", "2", 1)], "fill: next_open cannot fill orders on quotes"),
    ],
)
def test_run_when_fill_model_does_not_suit_the_data_then_config_error(
    fill: str, events: list[Event], message: str
) -> None:
    strategy = load_strategy(f"{__name__}:Scripted", {"signals": {}})
    with pytest.raises(ConfigError, match=message):
        Backtest(strategy, BacktestConfig(fill=fill)).run(events)  # type: ignore[arg-type]


NO_RISK = RiskConfig(limits=gates.NO_LIMITS, breaker=gates.NO_BREAKER)


@pytest.mark.parametrize(
    ("signals", "config"),
    [
        (THREE_SIGNALS, HAND),
        ({1: "buy", 3: "sell"}, {"quantity": "150", "max_position": "100"}),
        (THREE_SIGNALS, {"fill": "close", "spread_bps": "30", "slippage_bps": "5"}),
    ],
)
def test_run_when_no_breaker_or_stops_then_limits_only_decides_as_the_full_risk_engine(
    signals: dict[int, str], config: dict[str, Any]
) -> None:
    """Without a risk config the backtest uses the limits and book alone; with a config whose
    breaker cannot trip and without stops, the risk manager's whole engine: same result."""
    strategy = load_strategy(
        f"{__name__}:Scripted", {"signals": {str(k): v for k, v in signals.items()}}
    )
    lean = Backtest(strategy, BacktestConfig(**config)).run(bars(THREE_TRADES))
    strategy = load_strategy(
        f"{__name__}:Scripted", {"signals": {str(k): v for k, v in signals.items()}}
    )
    full = Backtest(strategy, BacktestConfig(**config), risk=NO_RISK).run(bars(THREE_TRADES))
    assert results.to_json(results.summary(lean)) == results.to_json(results.summary(full))
    assert [f.client_order_id for f in lean.fills] == [f.client_order_id for f in full.fills]


def test_run_when_risk_config_has_a_stop_loss_then_the_risk_manager_exits_at_the_close() -> None:
    risk = RiskConfig(
        limits=gates.NO_LIMITS, breaker=gates.NO_BREAKER, stops={"stop_loss_pct": "5"}
    )
    prices = [("100", "100"), ("100", "100"), ("100", "98"), ("98", "94"), ("94", "90")]
    strategy = load_strategy(f"{__name__}:Scripted", {"signals": {"1": "buy"}})
    done = Backtest(strategy, BacktestConfig(quantity=D(10)), risk=risk).run(bars(prices))
    (trip,) = done.round_trips
    # Bought at bar 2's open, 100; bar 3 closes at 94, 6 % down: the stop sells there.
    assert (trip.entry_price, trip.exit_price, trip.pnl) == (D(100), D(94), D(-60))
    assert trip.exit_ts_ns == START_NS + 4 * DAY_NS
    assert [f.side for f in done.fills] == [Side.BUY, Side.SELL]


def test_run_when_breaker_trips_then_the_risk_manager_rejects_new_entries() -> None:
    risk = RiskConfig(
        limits=gates.NO_LIMITS,
        breaker={"max_move_pct": "5", "volatility_window_s": 86_400, "max_daily_loss": "1e9"},
    )
    prices = [("100", "100"), ("100", "110"), ("110", "110"), ("110", "110")]
    strategy = load_strategy(f"{__name__}:Scripted", {"signals": {"2": "buy"}})
    done = Backtest(strategy, BacktestConfig(), risk=risk).run(bars(prices))
    assert done.fills == []
    (rejected,) = done.rejected
    assert rejected.reason.startswith("BREAKER_OPEN: symbol=AAPL")


class TakeProfit(Scripted):
    """Buys on bar 0; on each buy fill, sells at once (a strategy that trades from on_fill)."""

    def on_fill(self, fill: Fill) -> Intent | None:
        super().on_fill(fill)
        return Intent(fill.symbol, Side.SELL, "out") if fill.side is Side.BUY else None


def test_run_when_strategy_trades_on_a_fill_then_after_that_order_is_done() -> None:
    strategy = TakeProfit(ScriptedParams(signals={0: Side.BUY}))
    done = Backtest(strategy, BacktestConfig(fill="close", quantity=D(4))).run(
        bars([("10", "10"), ("10", "11")])
    )
    assert [(f.side, f.quantity, f.price) for f in done.fills] == [
        (Side.BUY, D(4), D(10)),
        (Side.SELL, D(4), D(10)),
    ]
    assert [t.pnl for t in done.round_trips] == [D(0)]
