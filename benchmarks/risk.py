"""The risk manager: one check in-process, a check through the real processes, and a restart.

- `risk.check`: `RiskEngine.check` of one signal against every limit (allow-list, order quantity,
  open orders, collar, order value, position, gross notional, concentration), the breaker and the
  halt, in-process, with 8 symbols holding positions and 8 pending approvals. The approval is not
  recorded (no store: the benchmark measures the check, not the disk); p50 and p99 of 200,000.
- `risk.round_trip`: strategy → broker → risk → broker → strategy: a `CheckSignal` request from
  this process through the real broker process to the real risk process and back, one at a time,
  alternately approved (the approval fsynced to the state log before the reply) and rejected;
  each approved order is then filled (a `Fill` published, untimed), as execution would.
- `risk.replay`: restart from a state log of 1,000,000 records (approvals, acknowledgements and
  fills, no snapshot): `statelog.load` reads, checks, decodes and applies them all.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import prometheus_client as prom

from benchmarks.results import Result
from components.core import topics
from components.core.config import TradingSystemSpec
from components.core.errors import BusError
from components.core.events import (
    CheckSignal,
    Fill,
    Order,
    Quote,
    Side,
    Signal,
    SignalChecked,
)
from components.local import free_ports
from components.risk import lifecycle, records, statelog
from components.risk.engine import RiskEngine
from components.runtime import journal
from components.runtime.bus import Bus
from components.runtime.settings import BrokerEndpoints

CHECK_TARGET_US = 20.0
ROUND_TRIP_TARGET_MS = 1.0
REPLAY_TARGET_S = 10.0
SYMBOLS = [f"S{n:02d}" for n in range(8)]
D = Decimal
T0 = 1_710_165_600 * 1_000_000_000


def _quote(symbol: str, mid: Decimal, ts_ns: int = T0) -> Quote:
    return Quote(
        symbol=symbol,
        bid_price=mid - D("0.01"),
        bid_size=D(100),
        ask_price=mid + D("0.01"),
        ask_size=D(100),
        ts_event_ns=ts_ns,
    )


def _signal(signal_id: str, symbol: str, side: Side, quantity: int = 1) -> Signal:
    return Signal(
        signal_id=signal_id,
        strategy="bench",
        symbol=symbol,
        side=side,
        quantity=D(quantity),
        ts_event_ns=T0,
        ts_origin_ns=T0,
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


# --- in-process check -------------------------------------------------------------------------


def _check() -> Result:
    spec = TradingSystemSpec.model_validate(
        {
            "symbols": SYMBOLS,
            "risk": {
                "limits": {
                    "max_position": 10_000,
                    "max_notional": 10_000_000,
                    "max_concentration_pct": 50,
                    "max_open_orders": 100,
                }
            },
        }
    )
    engine = RiskEngine(spec)
    engine.start("bench", T0)
    for n, symbol in enumerate(SYMBOLS):
        engine.on_quote(_quote(symbol, D(100 + n)), T0)
        decision = engine.check(_signal(f"pos-{symbol}", symbol, Side.BUY, 50), T0 + 10**9, T0)
        assert isinstance(decision, lifecycle.Approved)
        fill = Fill(
            fill_id=f"f-{symbol}",
            client_order_id=decision.order.client_order_id,
            symbol=symbol,
            side=Side.BUY,
            quantity=D(50),
            price=D(100 + n),
            fee=D("0.25"),
            venue="bench",
            ts_event_ns=T0,
        )
        engine.on_fill(fill, T0)
        engine.check(_signal(f"pend-{symbol}", symbol, Side.BUY, 5), T0 + 10**9, T0)
    signals = [_signal(f"s{i}", SYMBOLS[i % 8], Side.BUY, 3) for i in range(1000)]
    durations_us: list[float] = []
    gc.collect()
    gc.freeze()
    clock = time.perf_counter_ns
    for _ in range(200):
        for one in signals:
            start = clock()
            validated = lifecycle.validate(lifecycle.Unchecked(one, T0 + 10**9), engine.symbols, T0)
            rejection = engine.first_rejection(one)
            durations_us.append((clock() - start) / 1000)
        assert isinstance(validated, lifecycle.Validated) and rejection is None, rejection
    gc.unfreeze()
    p50, p99 = _percentile(durations_us, 0.5), _percentile(durations_us, 0.99)
    return Result(
        "risk.check",
        f"p99 < {CHECK_TARGET_US:g} µs",
        f"p50 {p50:.1f} µs, p99 {p99:.1f} µs",
        p99 < CHECK_TARGET_US,
        note=(
            f"{len(durations_us):,} checks of a signal that passes every limit (the slowest path: "
            "no early rejection), 8 symbols with positions and pending orders."
        ),
        values={"p50_us": round(p50, 2), "p99_us": round(p99, 2), "count": len(durations_us)},
    )


# --- round trip through the processes ---------------------------------------------------------


class Processes:
    """The real broker and risk manager as child processes on free ports of 127.0.0.1."""

    def __init__(self, workdir: Path) -> None:
        publish, subscribe, request, reply, self.broker_http, self.risk_http = free_ports(6)
        self.endpoints = BrokerEndpoints(
            host="127.0.0.1",
            publish_port=publish,
            subscribe_port=subscribe,
            request_port=request,
            reply_port=reply,
        )
        config = workdir / "bench.yaml"
        config.write_text(
            "symbols: [AAPL]\n"
            "risk:\n  limits: {max_position: 1000000, max_notional: 1000000000, "
            "max_open_orders: 10000}\n"
        )
        base = {
            **os.environ,
            "TS_LISTEN_HOST": "127.0.0.1",
            "TS_BROKER_PUBLISH_PORT": str(publish),
            "TS_BROKER_SUBSCRIBE_PORT": str(subscribe),
            "TS_BROKER_REQUEST_PORT": str(request),
            "TS_BROKER_REPLY_PORT": str(reply),
            "TS_LOG_LEVEL": "WARNING",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        for name, port in (("broker", self.broker_http), ("risk", self.risk_http)):
            env = {**base, "TS_HTTP_PORT": str(port), "TS_DATA_DIR": str(workdir / name)}
            command = [sys.executable, "-m", "components", "component", name, "--config"]
            log = (workdir / f"{name}.log").open("wb")
            self.processes.append(
                subprocess.Popen([*command, str(config)], env=env, stdout=log, stderr=log)
            )
            self._wait_ready(port)

    @staticmethod
    def _wait_ready(port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            url = f"http://127.0.0.1:{port}/ready"
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=1) as r:
                if r.status == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"the process on port {port} was not ready within 30 s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def _round_trips(endpoints: BrokerEndpoints, count: int) -> dict[bool, list[float]]:
    bus = Bus(endpoints, "bench-strategy", prom.CollectorRegistry())
    publisher, requester = bus.publisher(), bus.requester()
    durations: dict[bool, list[float]] = {True: [], False: []}
    ids = itertools.count()
    try:
        # The risk manager needs a price: publish quotes until a check is approved.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            now = time.time_ns()
            publisher.publish(topics.quote("AAPL"), _quote("AAPL", D(100), now), ts_event_ns=now)
            signal = _signal(f"warm-{next(ids)}", "AAPL", Side.BUY)
            check = CheckSignal(signal=signal, deadline_ns=now + 10**9)
            try:  # the sockets connect in the background: the first requests may not leave
                reply = await requester.request(topics.RISK_CHECK, check, timeout_s=2)
            except BusError:
                await asyncio.sleep(0.05)
                continue
            if isinstance(reply.payload, SignalChecked) and reply.payload.approved:
                break
            await asyncio.sleep(0.05)
        for i in range(count):
            # Alternate: a small order (approved, fsynced) and one above max_order_quantity.
            quantity = 1 if i % 2 == 0 else 5000
            side = Side.BUY if i % 4 == 0 else Side.SELL
            now = time.time_ns()
            check = CheckSignal(
                signal=_signal(f"s{next(ids)}", "AAPL", side, quantity), deadline_ns=now + 10**9
            )
            start = time.perf_counter_ns()
            reply = await requester.request(topics.RISK_CHECK, check, timeout_s=2)
            elapsed_ms = (time.perf_counter_ns() - start) / 1e6
            checked = reply.payload
            assert isinstance(checked, SignalChecked)
            durations[checked.approved].append(elapsed_ms)
            if checked.approved and checked.client_order_id:
                # Play execution (untimed): the order fills, so approvals do not pile up.
                now = time.time_ns()
                fill = Fill(
                    fill_id=f"f-{checked.client_order_id}",
                    client_order_id=checked.client_order_id,
                    symbol="AAPL",
                    side=side,
                    quantity=D(quantity),
                    price=D("100.01"),
                    fee=D(0),
                    venue="bench",
                    ts_event_ns=now,
                )
                publisher.publish(topics.FILLS, fill, ts_event_ns=now)
            await asyncio.sleep(0.002)  # a strategy's pace, not a flood
    finally:
        bus.close()
    return durations


def _round_trip() -> list[Result]:
    with tempfile.TemporaryDirectory(prefix="ts-bench-risk-") as workdir:
        processes = Processes(Path(workdir))
        try:
            durations = asyncio.run(_round_trips(processes.endpoints, 2000))
        finally:
            processes.stop()
    results = []
    for approved, name in ((True, "risk.round_trip"), (False, "risk.round_trip.rejected")):
        values = durations[approved]
        p50, p99 = _percentile(values, 0.5), _percentile(values, 0.99)
        what = "approved: fsync of the approval" if approved else "rejected: no disk write"
        results.append(
            Result(
                name,
                f"p99 < {ROUND_TRIP_TARGET_MS:g} ms",
                f"p50 {p50:.2f} ms, p99 {p99:.2f} ms",
                p99 < ROUND_TRIP_TARGET_MS,
                note=f"{len(values)} requests ({what}), broker and risk as real processes.",
                values={"p50_ms": round(p50, 3), "p99_ms": round(p99, 3), "count": len(values)},
            )
        )
    return results


# --- replay -----------------------------------------------------------------------------------


def _write_log(path: Path, count: int) -> None:
    """`count` records of approvals, acknowledgements and fills, written without fsync (the
    benchmark measures reading them)."""
    with path.open("wb") as file:
        seq = itertools.count(1)
        file.write(
            journal.encode(
                records.LogOpened(
                    ts_logged_ns=T0, seq=next(seq), system="bench", initial_cash=D(10**9)
                )
            )
        )
        n = 0
        while n * 3 + 1 < count:
            symbol, side = SYMBOLS[n % 8], Side.BUY if n % 2 == 0 else Side.SELL
            ts = T0 + n * 1000
            order = Order(
                client_order_id=f"bench-{n}",
                signal_id=f"s-{n}",
                symbol=symbol,
                side=side,
                quantity=D(10),
                ts_event_ns=ts,
                ts_origin_ns=ts,
            )
            fill = Fill(
                fill_id=f"f-{n}",
                client_order_id=order.client_order_id,
                symbol=symbol,
                side=side,
                quantity=D(10),
                price=D("100.00") + D(n % 100) / 100,
                fee=D("0.05"),
                venue="bench",
                ts_event_ns=ts,
            )
            file.write(
                journal.encode(records.OrderApproved(ts_logged_ns=ts, seq=next(seq), order=order))
            )
            file.write(
                journal.encode(
                    records.OrderAcknowledged(
                        ts_logged_ns=ts, seq=next(seq), client_order_id=order.client_order_id
                    )
                )
            )
            file.write(
                journal.encode(records.FillApplied(ts_logged_ns=ts, seq=next(seq), fill=fill))
            )
            n += 1


def _replay() -> Result:
    count = 1_000_000
    with tempfile.TemporaryDirectory(prefix="ts-bench-replay-") as workdir:
        directory = Path(workdir)
        _write_log(directory / statelog.STATE_LOG_NAME, count)
        size_mb = (directory / statelog.STATE_LOG_NAME).stat().st_size / 1e6
        start = time.perf_counter()
        restored = statelog.load(directory, D(0))
        elapsed_s = time.perf_counter() - start
    records_read = restored.records_replayed
    return Result(
        "risk.replay",
        f"1,000,000 records < {REPLAY_TARGET_S:g} s",
        f"{elapsed_s:.2f} s",
        elapsed_s < REPLAY_TARGET_S and records_read >= count,
        note=(
            f"{records_read:,} records ({size_mb:.0f} MB: approvals, acknowledgements, fills of 8 "
            f"symbols), {records_read / elapsed_s:,.0f} records/s; with snapshots a restart "
            "replays at most risk.snapshot_every records."
        ),
        values={"seconds": round(elapsed_s, 3), "records": records_read, "mb": round(size_mb, 1)},
    )


def run() -> list[Result]:
    return [_check(), *_round_trip(), _replay()]
