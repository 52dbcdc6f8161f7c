"""The engine's output on a seeded random walk is the output recorded before its hot path was
optimised: every round trip, fill and rejection, the equity curve (by its SHA-256) and the final
cash, under the benchmark's settings (all equity, long/short, next open, no fees) and under fees,
spread, slippage and fill at the close. Independently of the recording, every equity point equals
the cash plus the position at the close, computed from the fills in exact fractions.

Recorded with `python -m tests.unit.backtest.test_engine_golden` (only when a change of behaviour
is meant; review the diff)."""

from __future__ import annotations

import hashlib
import json
import math
import random
import sys
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from components.backtest import results
from components.backtest.config import BacktestConfig
from components.backtest.engine import Backtest, BacktestRun
from components.core.events import Bar
from components.strategy.base import load_strategy

GOLDEN = Path(__file__).parent / "golden" / "sma_cross_walk.json"
DAY_NS = 86_400 * 10**9
BARS = 3_000

SCENARIOS: dict[str, dict[str, Any]] = {
    "benchmark": {
        "initial_cash": "1000000",
        "sizing": "fraction",
        "fraction": "1",
        "allow_short": True,
    },
    "fees_at_close": {
        "initial_cash": "250000",
        "sizing": "fraction",
        "fraction": "0.5",
        "allow_short": True,
        "fill": "close",
        "commission_per_order": "1",
        "commission_rate": "0.001",
        "commission_per_share": "0.005",
        "spread_bps": "2",
        "slippage_bps": "5",
    },
    "fixed_long_only": {"quantity": "37", "max_position": "100", "on_opposite": "close"},
}


def walk(count: int = BARS, seed: int = 11) -> list[Bar]:
    """The benchmark's daily random walk (1.2 % a day, prices in cents), as bars."""
    rng = random.Random(seed)
    price = 100.0
    out = []
    for day in range(count):
        close = max(1.0, price * math.exp(rng.gauss(0.0002, 0.012)))
        high = max(price, close) * (1 + rng.random() * 0.004)
        low = min(price, close) * (1 - rng.random() * 0.004)
        ts_ns = (946_684_800 + day * 86_400) * 10**9
        out.append(
            Bar(
                symbol="SIM",
                timeframe="86400s",
                open=Decimal(f"{price:.2f}"),
                high=Decimal(f"{high:.2f}"),
                low=Decimal(f"{low:.2f}"),
                close=Decimal(f"{close:.2f}"),
                volume=Decimal(rng.randrange(1_000, 100_000)),
                vwap=Decimal(f"{close:.2f}"),
                trade_count=1,
                ts_open_ns=ts_ns,
                ts_close_ns=ts_ns + DAY_NS,
            )
        )
        price = float(f"{close:.2f}")
    return out


def backtest(scenario: str, events: list[Bar]) -> BacktestRun:
    strategy = load_strategy("components.strategy.sma_cross:SmaCross", {"fast": 10, "slow": 50})
    return Backtest(strategy, BacktestConfig.model_validate(SCENARIOS[scenario])).run(events)


def record(run: BacktestRun) -> dict[str, Any]:
    summary = results.summary(run)
    curve = json.dumps(summary["equity"]).encode()
    return {
        "trades": summary["trades"],
        "rejected": summary["rejected"],
        "fills": [
            [
                f.client_order_id,
                str(f.side),
                str(f.quantity),
                str(f.price),
                str(f.fee),
                f.ts_event_ns,
            ]
            for f in run.fills
        ],
        "equity_points": len(run.equity),
        "equity_sha256": hashlib.sha256(curve).hexdigest(),
        "final_cash": str(run.book.cash),
    }


def valued(trade: dict[str, Any]) -> dict[str, Any]:
    """A round trip with its numbers as Decimals: how the summary spells a price (94.33 or
    94.3300000) is the report's business, not the engine's."""
    out: dict[str, Any] = {}
    for key, value in trade.items():
        try:
            out[key] = Decimal(value) if isinstance(value, str) else value
        except InvalidOperation:
            out[key] = value
    return out


@pytest.fixture(scope="module")
def events() -> list[Bar]:
    return walk()


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_run_when_random_walk_then_trades_and_equity_are_as_recorded(
    scenario: str, events: list[Bar]
) -> None:
    expected = json.loads(GOLDEN.read_text())[scenario]
    actual = json.loads(json.dumps(record(backtest(scenario, events))))
    assert len(actual["trades"]) == len(expected["trades"]) > 10
    for index, (mine, recorded) in enumerate(
        zip(actual["trades"], expected["trades"], strict=True)
    ):
        assert valued(mine) == valued(recorded), f"round trip {index}"
    assert {k: v for k, v in actual.items() if k != "trades"} == {
        k: v for k, v in expected.items() if k != "trades"
    }


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_run_when_random_walk_then_each_equity_point_is_cash_plus_position_at_the_close(
    scenario: str, events: list[Bar]
) -> None:
    done = backtest(scenario, events)
    fills = iter(done.fills)
    pending = next(fills, None)
    cash, quantity = Fraction(done.config.initial_cash), Fraction(0)
    closes = {bar.ts_close_ns: bar.close for bar in events}
    # A fill at the next open is stamped with that bar's open, the close of the bar before.
    late = 1 if done.config.fill == "next_open" else 0
    for point in done.equity[:-1]:  # the last point follows the close at the end
        while pending is not None and pending.ts_event_ns + late <= point.ts_ns:
            signed = pending.side.sign * Fraction(pending.quantity)
            cash -= signed * Fraction(pending.price) + Fraction(pending.fee)
            quantity += signed
            pending = next(fills, None)
        expected = cash + quantity * Fraction(closes[point.ts_ns])
        assert Fraction(point.equity) == expected, f"equity at {point.ts_ns}"
        assert point.exposed == (quantity != 0)


if __name__ == "__main__":
    bars = walk()
    recorded = {name: record(backtest(name, bars)) for name in sorted(SCENARIOS)}
    GOLDEN.write_text(json.dumps(recorded, indent=1) + "\n")
    sys.stdout.write(f"{GOLDEN}: {', '.join(recorded)}\n")
