"""A seeded fault campaign against the project's Alpaca Trading fake, with the real execution
engine and the real risk manager as child processes (`tradingsystem component ...`) on the
in-process broker. The fake lives in this process, so it survives every kill.

Faults: on REST, 5xx, 429 bursts, dropped connections and accept-then-timeout, drawn by the fake;
on the trade_updates stream, duplicated and out-of-order events (drawn), mutes (open, pinging,
silent: lost events) and closes (scheduled); and kill -9 of the execution engine mid-burst,
restarted on the same data directory. After the faults clear, within a bounded time:

- no logical order twice at the venue (one venue order per client order id, each approved);
- no fill lost: every order the fake filled has that cumulative quantity in the execution
  engine's order log and its fill id in the risk manager's state log;
- the risk manager's positions equal the fake's.

The campaign prints the faults injected, by kind.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import re
import signal
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import prometheus_client as prom
import pytest
import yaml

from components.broker.service import Broker
from components.core import topics
from components.core.errors import CorruptLogError
from components.core.events import CheckSignal, Heartbeat, Quote, Side, Signal, SignalChecked
from components.execution import orderlog
from components.local import free_ports
from components.risk import statelog
from components.runtime.bus import Bus, Publisher, Requester
from components.runtime.settings import BrokerEndpoints
from tests.fakes import alpaca_trading
from tests.fakes.alpaca_trading import FakeAlpacaTrading, Faults

pytestmark = pytest.mark.integration

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
PRICES = {"AAPL": D("100.01"), "MSFT": D("50.02")}
INITIAL_CASH = D(100_000_000)
SIGNALS = 240
KILLS = 3
MUTES = 8
CLOSES = 6
SETTLE_S = 45.0  # bound for the venue, the order log and the risk manager to agree


def campaign_spec(fake_url: str) -> dict[str, Any]:
    return {
        "symbols": list(PRICES),
        "risk": {
            "limits": {"max_position": "100000", "max_notional": "100000000"},
            "initial_cash": str(INITIAL_CASH),
        },
        "execution": {
            "venue": "alpaca-paper",
            "alpaca": {
                "paper_url": fake_url,
                "request_timeout_s": 0.2,
                "poll_interval_s": 0.2,
                "silence_timeout_s": 0.5,
            },
            "retry": {"initial_backoff_ms": 5, "max_backoff_ms": 50, "max_attempts": 12},
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 1000,
        },
    }


class Child:
    """`tradingsystem component NAME` as a child process that can be killed and restarted."""

    def __init__(self, name: str, config: Path, endpoints: BrokerEndpoints, data_dir: Path) -> None:
        self.name = name
        self.config = config
        self.port = free_ports(1)[0]
        self.data_dir = data_dir / name
        self.env = {
            **os.environ,
            "TS_SYSTEM_NAME": "campaign",
            "TS_LISTEN_HOST": "127.0.0.1",
            "TS_HTTP_PORT": str(self.port),
            "TS_BROKER_HOST": "127.0.0.1",
            "TS_BROKER_PUBLISH_PORT": str(endpoints.publish_port),
            "TS_BROKER_SUBSCRIBE_PORT": str(endpoints.subscribe_port),
            "TS_BROKER_REQUEST_PORT": str(endpoints.request_port),
            "TS_BROKER_REPLY_PORT": str(endpoints.reply_port),
            "TS_DATA_DIR": str(self.data_dir),
            "APCA_API_KEY_ID": alpaca_trading.KEY,
            "APCA_API_SECRET_KEY": alpaca_trading.SECRET,
        }
        self.log_path = data_dir / f"{name}.log"
        self.process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "components",
                "component",
                self.name,
                "--config",
                str(self.config),
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
            )

    async def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.kills += 1

    async def stop(self) -> int:
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(self.process.wait(), 15)
        assert self.process.returncode is not None
        return self.process.returncode

    async def get(self, path: str) -> tuple[int, str]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{self.port}{path}") as response,
        ):
            return response.status, await response.text()

    async def ready(self, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                if (await self.get("/ready"))[0] == 200:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(
            f"{self.name} not ready in {timeout_s} s: {self.log_path.read_text()[-3000:]}"
        )

    async def counter(self, name: str, **labels: str) -> float:
        """One sample of the child's /metrics (0 when absent)."""
        _, text = await self.get("/metrics")
        for match in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.MULTILINE):
            if dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
                return float(match.group(2))
        return 0.0


async def market(publisher: Publisher) -> None:
    """Steady quotes for the risk manager's checks, and the heartbeat the broker fixture lacks."""
    while True:
        now = time.time_ns()
        for symbol, price in PRICES.items():
            quote = Quote(
                symbol=symbol,
                bid_price=price - D("0.02"),
                bid_size=D(100),
                ask_price=price,
                ask_size=D(100),
                ts_event_ns=now,
            )
            publisher.publish(topics.quote(symbol), quote, ts_event_ns=now)
        publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=now), ts_event_ns=now)
        await asyncio.sleep(0.02)


def risk_state(data_dir: Path) -> statelog.LoggedState | None:
    """The risk manager's state as its log says now (None while a file is being rotated)."""
    try:
        return statelog.load(data_dir, INITIAL_CASH).state
    except (OSError, CorruptLogError):
        return None


def order_log(data_dir: Path) -> orderlog.Orders | None:
    try:
        return orderlog.load(data_dir / orderlog.ORDER_LOG_NAME)
    except (OSError, CorruptLogError):
        return None


def disagreements(fake: FakeAlpacaTrading, risk_dir: Path, execution_dir: Path) -> list[str]:
    """What the order log and the risk manager do not (yet) agree on with the venue."""
    state, orders = risk_state(risk_dir), order_log(execution_dir)
    if state is None or orders is None:
        return ["a log is being written"]
    problems = []
    for venue_order in fake.orders.values():
        body = venue_order.body
        cid, filled = body["client_order_id"], D(body["filled_qty"])
        logged = orders.states.get(cid)
        if logged is None:
            problems.append(f"{cid}: at the venue, not in the order log")
            continue
        if logged.filled != filled:
            problems.append(f"{cid}: venue filled {filled}, order log {logged.filled}")
        if filled and f"{cid}:{filled}" not in state.fill_ids:
            problems.append(f"{cid}: fill {cid}:{filled} not booked by the risk manager")
    for symbol in PRICES:
        held, venue = state.book.quantity(symbol), fake.positions.get(symbol, D(0))
        if held != venue:
            problems.append(f"{symbol}: risk holds {held}, the venue {venue}")
    return problems


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpacaTrading]:
    faults = Faults(
        server_error=0.08,
        rate_limit=0.04,
        burst=3,
        dropped=0.05,
        accept_then_timeout=0.06,
        hang_s=0.4,
        duplicate_event=0.1,
        out_of_order=0.1,
    )
    async with alpaca_trading.running(
        faults=faults, seed=23, rate_limit=100_000, partial_fills=True
    ) as server:
        for symbol, price in PRICES.items():
            server.set_price(symbol, price)
        yield server


class Signals:
    """Signals to the risk manager over the bus, as a strategy sends them."""

    def __init__(self, requester: Requester, rng: random.Random) -> None:
        self.requester = requester
        self.rng = rng
        self.sent = 0
        self.approved = 0

    async def send(self) -> None:
        self.sent += 1
        now = time.time_ns()
        signal_ = Signal(
            signal_id=f"sig-{self.sent}",
            strategy="campaign",
            symbol=self.rng.choice(list(PRICES)),
            side=self.rng.choice([Side.BUY, Side.SELL]),
            quantity=D(self.rng.randint(1, 9)),
            ts_event_ns=now,
            ts_origin_ns=now,
        )
        check = CheckSignal(signal=signal_, deadline_ns=now + 2 * 10**9)
        reply = await self.requester.request(topics.RISK_CHECK, check, timeout_s=3)
        assert isinstance(reply.payload, SignalChecked)
        self.approved += reply.payload.approved


async def test_campaign_when_rest_and_stream_faults_and_kills_then_no_order_twice_no_fill_lost(
    broker: Broker, endpoints: BrokerEndpoints, fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    config = tmp_path / "campaign.yaml"
    config.write_text(yaml.safe_dump(campaign_spec(fake.url)))
    risk = Child("risk", config, endpoints, tmp_path)
    execution = Child("execution", config, endpoints, tmp_path)
    bus = Bus(endpoints, "campaign", prom.CollectorRegistry())
    publisher, requester = bus.publisher(), bus.requester()
    pump = asyncio.create_task(market(publisher))
    rng = random.Random(7)
    signals = Signals(requester, rng)
    scheduled: collections.Counter[str] = collections.Counter()
    silence_polls = 0.0
    loop = asyncio.get_running_loop()
    try:
        await risk.start()
        await risk.ready()
        await execution.start()
        await execution.ready()
        points = rng.sample(range(10, SIGNALS - 10), KILLS + MUTES + CLOSES)
        plan = dict.fromkeys(points[:KILLS], "kill")
        plan |= dict.fromkeys(points[KILLS : KILLS + MUTES], "mute")
        plan |= dict.fromkeys(points[KILLS + MUTES :], "close")

        for n in range(SIGNALS):
            action = plan.get(n, "")
            if action == "kill":
                silence_polls += await execution.counter(
                    "execution_venue_polls_total", venue="alpaca", reason="silence"
                )
                # A burst of orders, and the kill lands somewhere inside their processing.
                burst = asyncio.gather(*(signals.send() for _ in range(10)))
                await asyncio.sleep(rng.uniform(0.005, 0.05))
                await execution.kill()
                await burst
                await execution.start()
                await execution.ready()  # signals meanwhile would only expire unsent
            elif action == "mute":
                # Open and answering pings, but silent; the events meanwhile are lost.
                fake.mute()
                loop.call_later(rng.uniform(0.8, 1.5), fake.mute, False)
                scheduled["stream_mute"] += 1
            elif action == "close":
                await fake.drop_streams()
                scheduled["stream_close"] += 1
            await signals.send()
            await asyncio.sleep(0.01)

        # The faults clear: what is left must converge within SETTLE_S.
        fake.faults = Faults()
        fake.mute(False)
        await execution.ready()
        deadline = time.monotonic() + SETTLE_S
        while problems := disagreements(fake, risk.data_dir, execution.data_dir):
            assert time.monotonic() < deadline, problems[:10]
            await asyncio.sleep(0.1)
        silence_polls += await execution.counter(
            "execution_venue_polls_total", venue="alpaca", reason="silence"
        )

        injected = {**fake.injected, **scheduled, "kill_9": execution.kills}
        print(f"\nFaults injected, by kind: {dict(sorted(injected.items()))}")
        print(
            f"Signals {signals.sent}, approved {signals.approved}, venue orders "
            f"{len(fake.orders)}, silence polls {silence_polls:g}"
        )
        assert sum(injected.values()) >= 100, injected
        for kind in ("500", "503", "429", "drop", "timeout", "duplicate_event"):
            assert fake.injected[kind] > 0, kind
        assert fake.injected["out_of_order_event"] > 0 and fake.injected["muted_event"] > 0
        assert execution.kills == KILLS
        # Fills lost in a mute were found by the silence poll (not only by restarts).
        assert silence_polls > 0

        assert fake.orders, "no order reached the venue"
        assert max(fake.submits.values()) == 1  # no client order id created twice
        client_ids = [o.body["client_order_id"] for o in fake.orders.values()]
        assert len(set(client_ids)) == len(client_ids)
        state = risk_state(risk.data_dir)
        assert state is not None
        assert set(client_ids) <= set(state.signals.values())  # each an approved order
        assert signals.approved >= len(fake.orders)
        assert await execution.stop() == 0
        assert await risk.stop() == 0
        for child in (execution, risk):
            assert alpaca_trading.SECRET not in child.log_path.read_text()
    finally:
        for child in (execution, risk):
            if child.process is not None and child.process.returncode is None:
                await child.kill()
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
        requester.close()
        bus.close()
