"""`execution`: an order through the engine to the simulated exchange, and one rate-limiter acquire.

`execution.submit`: `ExecutionEngine.on_order` for one approved order, from its arrival to the
venue's acknowledgement applied and published (duplicate check, order-log append with its fsync,
`pending_new`, the gateway's rate limiter and submit, the simulated exchange's matching, the fill
and its log append): the engine's own cost, the exchange's configured latency being zero. The
order log is a real file in a temporary directory of the working disk (fsync included), the
publisher a recorder: the bus hop is measured by `tick_to_order`. p50/p99 over 3,000 orders.

`execution.rate_limiter`: `TokenBucket.acquire` when a token is available (the common case), per
call, median of 7 x 100,000; the wait itself when the bucket is empty is the point of a limiter,
not overhead.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom

from benchmarks.results import Result
from components.core import topics, wire
from components.core.config import TradingSystemSpec
from components.core.events import Order, Quote, Side
from components.execution.ratelimit import TokenBucket
from components.execution.service import ExecutionEngine
from components.runtime.settings import BrokerEndpoints, RuntimeSettings

SUBMIT_TARGET_MS = 1.0
ACQUIRE_TARGET_US = 5.0
ORDERS = 3_000


class _Recorder:
    def __init__(self) -> None:
        self.count = 0

    def publish(
        self, topic: str, payload: object, *, ts_event_ns: int, trace_id: str | None = None
    ) -> None:
        self.count += 1


async def _submit_latencies(data_dir: Path) -> list[float]:
    spec = TradingSystemSpec.model_validate(
        {
            "symbols": ["AAPL"],
            "execution": {"rate_limit_per_minute": 100_000, "rate_limit_burst": 10_000},
        }
    )
    endpoints = BrokerEndpoints(
        host="127.0.0.1", publish_port=1, subscribe_port=2, request_port=3, reply_port=4
    )
    settings = RuntimeSettings(
        system_name="bench", component_id="execution", broker=endpoints, data_dir=data_dir
    )
    engine = ExecutionEngine(spec, settings, prom.CollectorRegistry())
    engine.restore()
    engine._publisher = _Recorder()  # type: ignore[assignment]
    price = Decimal("187.00")
    engine.venue.on_quote(
        Quote(
            symbol="AAPL",
            bid_price=price,
            bid_size=Decimal(500),
            ask_price=price + Decimal("0.02"),
            ask_size=Decimal(500),
            ts_event_ns=1,
        )
    )
    latencies: list[float] = []
    for n in range(ORDERS):
        now = time.time_ns()
        order = Order(
            client_order_id=f"bench-{n}",
            signal_id=f"s{n}",
            symbol="AAPL",
            side=Side.BUY if n % 2 else Side.SELL,
            quantity=Decimal(10),
            ts_event_ns=now,
            ts_origin_ns=now,
        )
        envelope = wire.Envelope(topics.APPROVED_ORDERS, "risk", n, now, now, "t", order)
        started = time.perf_counter()
        await engine.on_order(order, envelope)
        latencies.append(time.perf_counter() - started)
        while not engine.venue.reports.empty():  # the rest of the fill's reports, untimed
            engine.on_report(engine.venue.reports.get_nowait())
    await engine.close()
    return latencies


async def _acquire_us() -> float:
    rounds = []
    for _ in range(7):
        bucket = TokenBucket(1e12, 1_000_000)
        calls = 100_000
        started = time.perf_counter_ns()
        for _ in range(calls):
            await bucket.acquire()
        rounds.append((time.perf_counter_ns() - started) / calls / 1000)
    return statistics.median(rounds)


def run() -> list[Result]:
    # In the working directory: its disk, not a tmpfs that would make fsync free.
    with tempfile.TemporaryDirectory(dir=Path.cwd(), prefix=".bench-execution-") as tmp:
        ms = sorted(x * 1000 for x in asyncio.run(_submit_latencies(Path(tmp))))
    p50, p99 = ms[len(ms) // 2], ms[int(len(ms) * 0.99)]
    results = []
    shm = Path("/dev/shm")
    if shm.is_dir():
        # The same on memory, where fsync costs nothing: the engine's own CPU cost.
        with tempfile.TemporaryDirectory(dir=shm, prefix="bench-execution-") as tmp:
            mem = sorted(x * 1000 for x in asyncio.run(_submit_latencies(Path(tmp))))
        m50, m99 = mem[len(mem) // 2], mem[int(len(mem) * 0.99)]
        results.append(
            Result(
                "execution.submit_memory",
                "context",
                f"p50 {m50:.3f} ms, p99 {m99:.3f} ms",
                None,
                "the same with the order log on /dev/shm: what the engine costs without the disk",
                {"p50_ms": m50, "p99_ms": m99},
            )
        )
    acquire = asyncio.run(_acquire_us())
    return [
        Result(
            "execution.submit",
            f"p99 < {SUBMIT_TARGET_MS:g} ms",
            f"p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            p99 < SUBMIT_TARGET_MS,
            f"{ORDERS} orders; includes two fsynced order-log appends per order (received, "
            f"acknowledged by the venue); max {ms[-1]:.2f} ms",
            {"p50_ms": p50, "p99_ms": p99, "max_ms": ms[-1]},
        ),
        *results,
        Result(
            "execution.rate_limiter",
            f"< {ACQUIRE_TARGET_US:g} µs per acquire",
            f"{acquire:.2f} µs",
            acquire < ACQUIRE_TARGET_US,
            "TokenBucket.acquire with a token available, median of 7 x 100,000 calls",
            {"acquire_us": acquire},
        ),
    ]
