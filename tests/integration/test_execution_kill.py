"""The fault campaign with kill -9: the execution engine runs as its own process against the fake
Alpaca Trading API (in this process, so the venue survives every kill), with the risk manager and
the broker in this process. Several hundred signals; the fake injects 429 bursts, 5xx, dropped
connections and accept-then-timeout; the engine is killed with SIGKILL at random moments and
restarted. At the end: no order twice at the venue, every venue fill booked by the risk manager
(none lost), and the risk manager's positions equal to the venue's."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import aiohttp
import prometheus_client as prom
import pytest
import yaml

from components.broker.service import Broker
from components.core import topics
from components.core.config import TradingSystemSpec
from components.core.events import (
    CheckSignal,
    Heartbeat,
    OrderStatus,
    OrderType,
    Quote,
    Side,
    Signal,
    SignalChecked,
)
from components.execution import orderlog
from components.local import free_ports
from components.risk.service import RiskManager
from components.runtime.bus import Bus, Publisher
from components.runtime.settings import BrokerEndpoints
from tests.conftest import make_settings
from tests.fakes import alpaca_trading
from tests.fakes.alpaca_trading import FakeAlpacaTrading, Faults

pytestmark = pytest.mark.integration

D = Decimal
ROOT = Path(__file__).resolve().parents[2]
PRICES = {"AAPL": D("100.01"), "MSFT": D("50.02")}
SIGNALS = 300
KILLS = 6


def campaign_spec(fake_url: str) -> dict[str, object]:
    return {
        "symbols": list(PRICES),
        "risk": {
            "limits": {"max_position": "100000", "max_notional": "100000000"},
            "initial_cash": "100000000",
        },
        "execution": {
            "venue": "alpaca-paper",
            "alpaca": {"paper_url": fake_url, "request_timeout_s": 0.2, "poll_interval_s": 0.2},
            "retry": {"initial_backoff_ms": 5, "max_backoff_ms": 50, "max_attempts": 12},
            "rate_limit_per_minute": 100_000,
            "rate_limit_burst": 1000,
        },
    }


@pytest.fixture
def spec() -> TradingSystemSpec:
    return TradingSystemSpec.model_validate(campaign_spec("http://127.0.0.1:1"))


class Execution:
    """`tradingsystem component execution` as a child process that can be killed and restarted."""

    def __init__(self, config: Path, endpoints: BrokerEndpoints, data_dir: Path) -> None:
        self.config = config
        self.port = free_ports(1)[0]
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
            "TS_DATA_DIR": str(data_dir / "execution"),
            "APCA_API_KEY_ID": alpaca_trading.KEY,
            "APCA_API_SECRET_KEY": alpaca_trading.SECRET,
        }
        self.log_path = data_dir / "execution.log"
        self.process: asyncio.subprocess.Process | None = None
        self.kills = 0

    async def start(self) -> None:
        with self.log_path.open("ab") as log_file:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "components",
                "component",
                "execution",
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

    async def ready(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{self.port}/ready") as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise AssertionError(
            f"execution not ready in {timeout_s} s: {self.log_path.read_text()[-3000:]}"
        )


async def market(publisher: Publisher) -> None:
    """Steady quotes for the risk manager's checks, and the heartbeat the broker fixture lacks."""
    while True:
        now = time.time_ns()
        for symbol, price in PRICES.items():
            q = Quote(
                symbol=symbol,
                bid_price=price - D("0.02"),
                bid_size=D(100),
                ask_price=price,
                ask_size=D(100),
                ts_event_ns=now,
            )
            publisher.publish(topics.quote(symbol), q, ts_event_ns=now)
        publisher.publish(topics.HEARTBEAT, Heartbeat(ts_event_ns=now), ts_event_ns=now)
        await asyncio.sleep(0.02)


@pytest.fixture
async def fake() -> AsyncIterator[FakeAlpacaTrading]:
    faults = Faults(
        server_error=0.12,
        rate_limit=0.05,
        burst=3,
        dropped=0.06,
        accept_then_timeout=0.08,
        hang_s=0.4,
        duplicate_event=0.1,
    )
    async with alpaca_trading.running(
        faults=faults, seed=11, rate_limit=100_000, partial_fills=True
    ) as server:
        for symbol, price in PRICES.items():
            server.set_price(symbol, price)
        yield server


async def test_campaign_when_execution_killed_and_venue_faulty_then_venue_equals_risk(
    broker: Broker, endpoints: BrokerEndpoints, fake: FakeAlpacaTrading, tmp_path: Path
) -> None:
    spec_dict = campaign_spec(fake.url)
    config = tmp_path / "campaign.yaml"
    config.write_text(yaml.safe_dump(spec_dict))
    spec = TradingSystemSpec.model_validate(spec_dict)
    risk = RiskManager(spec, make_settings("risk", endpoints, tmp_path), prom.CollectorRegistry())
    risk_task = asyncio.create_task(risk.run())
    bus = Bus(endpoints, "campaign", prom.CollectorRegistry())
    publisher, requester = bus.publisher(), bus.requester()

    pump = asyncio.create_task(market(publisher))
    execution = Execution(config, endpoints, tmp_path)
    rng = random.Random(5)
    ids = itertools.count(1)
    try:
        await execution.start()
        await execution.ready()
        kill_at = sorted(rng.sample(range(20, SIGNALS - 20), KILLS))
        approved = 0

        async def send_signal() -> None:
            nonlocal approved
            now = time.time_ns()
            signal_ = Signal(
                signal_id=f"sig-{next(ids)}",
                strategy="campaign",
                symbol=rng.choice(list(PRICES)),
                side=rng.choice([Side.BUY, Side.SELL]),
                quantity=D(rng.randint(1, 9)),
                ts_event_ns=now,
                ts_origin_ns=now,
            )
            check = CheckSignal(signal=signal_, deadline_ns=now + 2 * 10**9)
            reply = await requester.request(topics.RISK_CHECK, check, timeout_s=2)
            assert isinstance(reply.payload, SignalChecked)
            approved += reply.payload.approved

        for n in range(SIGNALS):
            if kill_at and n == kill_at[0]:
                kill_at.pop(0)
                # A burst of orders, and the kill lands somewhere inside their processing.
                burst = asyncio.gather(*(send_signal() for _ in range(10)))
                await asyncio.sleep(rng.uniform(0.005, 0.05))
                await execution.kill()
                await burst
                await execution.start()
                await execution.ready()  # signals meanwhile would only expire unsent
            await send_signal()
            await asyncio.sleep(0.005)
        await execution.ready()

        def settled() -> bool:
            state = risk.state
            booked = all(
                f"{o.body['client_order_id']}:{D(o.body['filled_qty'])}" in state.fill_ids
                for o in fake.orders.values()
                if D(o.body["filled_qty"])
            )
            return booked and all(
                state.book.quantity(symbol) == fake.positions.get(symbol, D(0)) for symbol in PRICES
            )

        deadline = time.monotonic() + 30
        while not settled():
            assert time.monotonic() < deadline, "risk never caught up with the venue"
            await asyncio.sleep(0.05)

        faults = sum(fake.injected.values()) + execution.kills
        assert faults >= 100, (fake.injected, len(fake.orders), approved)
        assert execution.kills == KILLS
        assert fake.orders, "no order reached the venue"
        assert max(fake.submits.values()) == 1  # no client order id created twice
        venue_ids = {o.body["client_order_id"] for o in fake.orders.values()}
        assert len(venue_ids) == len(fake.orders)  # no two venue orders for one approval
        assert venue_ids <= set(risk.state.signals.values())  # only approved orders
        for symbol in PRICES:
            assert risk.state.book.quantity(symbol) == fake.positions.get(symbol, D(0))
        assert approved >= len(fake.orders)
        assert await execution.stop() == 0
    finally:
        if execution.process is not None and execution.process.returncode is None:
            await execution.kill()
        pump.cancel()
        risk_task.cancel()
        for task in (pump, risk_task):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await risk.close()
        risk._close_bus()
        requester.close()
        bus.close()


async def test_sigterm_when_orders_rest_at_the_venue_then_canceled_logged_and_exit_0(
    broker: Broker, endpoints: BrokerEndpoints, tmp_path: Path
) -> None:
    """The halt contract: SIGTERM (the operator scaling execution to zero) cancels every working
    order at the venue within the bound, logs it, and exits 0."""
    async with alpaca_trading.running(rate_limit=100_000) as fake:
        for symbol, price in PRICES.items():
            fake.set_price(symbol, price)
        spec_dict = campaign_spec(fake.url)
        config = tmp_path / "halt.yaml"
        config.write_text(yaml.safe_dump(spec_dict))
        spec = TradingSystemSpec.model_validate(spec_dict)
        risk = RiskManager(
            spec, make_settings("risk", endpoints, tmp_path), prom.CollectorRegistry()
        )
        risk_task = asyncio.create_task(risk.run())
        bus = Bus(endpoints, "halt", prom.CollectorRegistry())
        publisher, requester = bus.publisher(), bus.requester()
        execution = Execution(config, endpoints, tmp_path)
        pump = asyncio.create_task(market(publisher))
        try:
            await execution.start()
            await execution.ready()
            deadline = time.monotonic() + 10
            while len(risk.quotes) < len(PRICES):  # risk needs a price to approve
                assert time.monotonic() < deadline
                await asyncio.sleep(0.02)
            for n in range(3):
                now = time.time_ns()
                signal_ = Signal(
                    signal_id=f"rest-{n}",
                    strategy="halt",
                    symbol="AAPL",
                    side=Side.BUY,
                    quantity=D(5),
                    ts_event_ns=now,
                    ts_origin_ns=now,
                    order_type=OrderType.LIMIT,
                    limit_price=D("97"),  # below the market (inside the risk collar): it rests
                )
                check = CheckSignal(signal=signal_, deadline_ns=now + 2 * 10**9)
                reply = await requester.request(topics.RISK_CHECK, check, timeout_s=2)
                assert isinstance(reply.payload, SignalChecked) and reply.payload.approved
            deadline = time.monotonic() + 10
            while sum(o.body["status"] == "new" for o in fake.orders.values()) < 3:
                assert time.monotonic() < deadline, "orders never reached the venue"
                await asyncio.sleep(0.02)

            started = time.monotonic()
            assert await execution.stop() == 0
            assert time.monotonic() - started < spec.execution.cancel_timeout_s + 2
            assert sorted(o.body["status"] for o in fake.orders.values()) == ["canceled"] * 3
            orders = orderlog.load(tmp_path / "execution" / orderlog.ORDER_LOG_NAME)
            assert {s.status for s in orders.states.values()} == {OrderStatus.CANCELED}
            deadline = time.monotonic() + 5
            while risk.state.approvals:  # the cancels reached the risk manager: exposure released
                assert time.monotonic() < deadline, risk.state.approvals
                await asyncio.sleep(0.02)
        finally:
            if execution.process is not None and execution.process.returncode is None:
                await execution.kill()
            pump.cancel()
            risk_task.cancel()
            for task in (pump, risk_task):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await risk.close()
            risk._close_bus()
            requester.close()
            bus.close()
