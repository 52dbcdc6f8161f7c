"""A backtest's output as plain data: the stats, the round trips, what is still open, the equity
curve, the prices it saw and what was rejected, in a fixed order, money as exact decimal text;
`to_json` is byte-identical for the same input (nothing in it comes from the wall clock, a hash
seed or a set's order). `trades_csv` is the round trips as a CSV file.

Prices are written at the instrument's tick (`tick_size`: 169.02, not 169.0200000) when they lie
on it, and exactly, with every digit they have, when they do not (a mid between two ticks).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from decimal import Decimal
from typing import Any

from components.backtest import stats
from components.backtest.engine import BacktestRun

DAY_NS = 86_400 * 1_000_000_000
TRADE_COLUMNS = (
    "symbol",
    "side",
    "quantity",
    "entry_time",
    "entry_price",
    "exit_time",
    "exit_price",
    "duration_days",
    "fees",
    "pnl",
    "return_pct",
)


def summary(
    run: BacktestRun, params: dict[str, Any] | None = None, closes: stats.Closes | None = None
) -> dict[str, Any]:
    """The result of `run`; with `closes` (`stats.closes_of(events)`), also the benchmark
    figures and the prices, which the report charts."""
    tick = run.config.tick_size
    return {
        "strategy": run.strategy,
        "params": params or {},
        "config": run.config.model_dump(mode="json"),
        "stats": stats.compute(run, closes),
        "trades": [
            {
                "symbol": trip.symbol,
                "side": "long" if trip.side.sign > 0 else "short",
                "quantity": exact(trip.quantity),
                "entry_ts_ns": trip.entry_ts_ns,
                "entry_price": at_tick(trip.entry_price, tick),
                "exit_ts_ns": trip.exit_ts_ns,
                "exit_price": at_tick(trip.exit_price, tick),
                "fees": exact(trip.fees),
                "pnl": exact(trip.pnl),
                "return_pct": trip.return_pct,
            }
            for trip in run.round_trips
        ],
        "open_positions": [
            {
                "symbol": position.symbol,
                "side": "long" if position.quantity > 0 else "short",
                "quantity": exact(abs(position.quantity)),
                "entry_ts_ns": position.entry_ts_ns,
                "avg_price": at_tick(position.avg_price, tick),
                "last_price": (
                    None if position.last_price is None else at_tick(position.last_price, tick)
                ),
                "fees": exact(position.fees),
                "unrealized_pnl": exact(position.pnl + position.fees),  # at the last price
                "pnl": exact(position.pnl),  # net of the fees paid opening it
            }
            for position in stats.open_positions(run)
        ],
        "rejected": [
            {
                "ts_ns": rejected.ts_ns,
                "symbol": rejected.symbol,
                "side": str(rejected.side),
                "quantity": str(rejected.quantity),
                "reason": rejected.reason,
            }
            for rejected in run.rejected
        ],
        "equity": [[point.ts_ns, exact(point.equity)] for point in run.equity],
        "prices": {
            symbol: [[ts, exact(price)] for ts, price in series]
            for symbol, series in sorted((closes or {}).items())
        },
    }


def exact(amount: Decimal) -> str:
    """An exact amount in one spelling: 100.10 and 100.1000 (a mid price's digits) are "100.1"."""
    return format(amount.normalize(), "f")


def at_tick(price: Decimal, tick: Decimal) -> str:
    """`price` with the tick's decimals if it lies on the tick, else exactly."""
    places = tick.normalize().as_tuple().exponent
    assert isinstance(places, int)
    if price % tick == 0 and places <= 0:
        return format(price.quantize(Decimal(1).scaleb(places)), "f")
    return exact(price)


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False)


def moment(ts_ns: int) -> str:
    """A time for people: the date alone for a session's start or end (midnight, or the last
    nanosecond of its date), else date and time, UTC."""
    seconds, remainder = divmod(ts_ns, 1_000_000_000)
    when = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    in_day = ts_ns % DAY_NS
    if in_day in (0, DAY_NS - 1):
        return f"{when:%Y-%m-%d}"
    return f"{when:%Y-%m-%d %H:%M:%S}" + (f".{remainder:09d}".rstrip("0") if remainder else "")


def trades_csv(result: dict[str, Any]) -> str:
    """The closed round trips of `result`, one a row, under `TRADE_COLUMNS`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TRADE_COLUMNS)
    for trade in result["trades"]:
        days = (trade["exit_ts_ns"] - trade["entry_ts_ns"]) / DAY_NS
        writer.writerow(
            [
                trade["symbol"],
                trade["side"],
                trade["quantity"],
                moment(trade["entry_ts_ns"]),
                trade["entry_price"],
                moment(trade["exit_ts_ns"]),
                trade["exit_price"],
                f"{days:.2f}",
                trade["fees"],
                trade["pnl"],
                f"{trade['return_pct']:.4f}",
            ]
        )
    return out.getvalue()
