"""A backtest's output as plain data: the stats, the round trips, the equity curve and what was
rejected, in a fixed order, money as exact decimal text; `to_json` is byte-identical for the same
input (nothing in it comes from the wall clock, a hash seed or a set's order)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from components.backtest import stats
from components.backtest.engine import BacktestRun


def summary(run: BacktestRun, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "strategy": run.strategy,
        "params": params or {},
        "config": run.config.model_dump(mode="json"),
        "stats": stats.compute(run),
        "trades": [
            {
                "symbol": trip.symbol,
                "side": "long" if trip.side.sign > 0 else "short",
                "quantity": str(trip.quantity),
                "entry_ts_ns": trip.entry_ts_ns,
                "entry_price": str(trip.entry_price),
                "exit_ts_ns": trip.exit_ts_ns,
                "exit_price": str(trip.exit_price),
                "fees": str(trip.fees),
                "pnl": str(trip.pnl),
                "return_pct": trip.return_pct,
            }
            for trip in run.round_trips
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
    }


def exact(amount: Decimal) -> str:
    """An exact amount in one spelling: 100.10 and 100.1000 (a mid price's digits) are "100.1"."""
    return format(amount.normalize(), "f")


def to_json(result: dict[str, Any]) -> str:
    return json.dumps(result, indent=1, ensure_ascii=False, allow_nan=False)
