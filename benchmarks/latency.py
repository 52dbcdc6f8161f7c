"""`tick_to_order`: from a market-data message to the approved order, through the real processes.

`tradingsystem run`'s supervisor starts the broker and every component as local processes; the
strategy trades on every SMA(1)/SMA(2) cross of 1 s bars over many symbols, with limits wide enough
that every signal is approved. Each `Order` carries `ts_origin_ns`, the send time of the bar message
that caused it; the latency is the time from then until the order arrives at a subscriber of
`risk.order` (the execution engine's socket sees it at the same moment): marketdata → broker →
strategy → risk check (request/reply through the broker, state log fsync) → broker → subscriber.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.results import Result
from components.core import topics
from components.core.config import parse_spec
from components.core.events import Order
from components.core.wire import Envelope
from components.local import Supervisor

TARGET_P99_MS = 5.0
DURATION_S = 30.0
SYMBOLS = [f"S{n:02d}" for n in range(8)]


def _spec_document() -> dict[str, object]:
    return {
        "symbols": SYMBOLS,
        "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 20}}, "bar_intervals_s": [1]},
        "strategy": {"params": {"fast": 1, "slow": 2}, "order_quantity": "1"},
        "risk": {"limits": {"max_position": "1000000", "max_notional": "1000000000"}},
    }


def run() -> list[Result]:
    latencies_ms: list[float] = []

    def on_envelope(envelope: Envelope) -> None:
        if isinstance(envelope.payload, Order):
            latencies_ms.append((time.time_ns() - envelope.payload.ts_origin_ns) / 1e6)

    with tempfile.TemporaryDirectory(prefix="ts-bench-") as data_dir:
        name, spec = parse_spec(_spec_document(), "benchmark")
        config = Path(data_dir) / "spec.yaml"
        config.write_text(spec.model_dump_json())
        supervisor = Supervisor(name, spec, config, Path(data_dir))
        supervisor.listeners.append(on_envelope)
        # Only what the measurement needs: the live view's feed of every quote is not the system.
        supervisor.observed_topics = [topics.APPROVED_ORDERS]
        asyncio.run(supervisor.run(DURATION_S))

    if len(latencies_ms) < 20:
        return [
            Result(
                "tick_to_order",
                f"p99 < {TARGET_P99_MS:g} ms",
                "too few orders",
                False,
                f"only {len(latencies_ms)} orders in {DURATION_S:g} s",
            )
        ]
    cuts = statistics.quantiles(latencies_ms, n=100, method="inclusive")
    p50, p99 = cuts[49], cuts[98]
    note = f"{len(latencies_ms)} orders, {len(SYMBOLS)} symbols, every process local"
    values = {"p50_ms": p50, "p99_ms": p99, "orders": len(latencies_ms)}
    return [
        Result("tick_to_order p50", "-", f"{p50:.2f} ms", None, note, values),
        Result(
            "tick_to_order p99",
            f"< {TARGET_P99_MS:g} ms",
            f"{p99:.2f} ms",
            p99 < TARGET_P99_MS,
            note,
            values,
        ),
    ]
