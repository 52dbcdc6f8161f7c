"""The closing check of `tradingsystem run` asks the venue, not only the bus: a run whose venue
holds what the risk manager never booked ends saying so, with exit code 1."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
import yaml

from components.core.events import OrderStatus, Side
from components.execution.venues.base import Report
from components.execution.venues.simulated import ACCOUNT_NAME
from tests.integration.processes import children_of

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
QUIET_SPEC = {"symbols": ["AAPL", "MSFT"], "strategy": {"params": {"fast": 50, "slow": 100}}}


def test_run_when_venue_holds_a_fill_risk_never_booked_then_closing_check_fails(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "var"
    (data_dir / "execution").mkdir(parents=True)
    # A fill the venue made for an order nobody here knows of (say, placed by hand).
    lost = Report(
        client_order_id="by-hand-1",
        venue_order_id="sim-0-1",
        symbol="AAPL",
        side=Side.BUY,
        status=OrderStatus.FILLED,
        quantity=Decimal(5),
        filled_quantity=Decimal(5),
        avg_fill_price=Decimal("100.00"),
        ts_event_ns=1,
        last_quantity=Decimal(5),
        last_price=Decimal("100.00"),
    )
    (data_dir / "execution" / ACCOUNT_NAME).write_bytes(msgspec.json.encode(lost) + b"\n")
    config = tmp_path / "quiet.yaml"
    config.write_text(yaml.safe_dump(QUIET_SPEC))
    command = [sys.executable, "-m", "components", "run", str(config), "--duration", "4"]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--plain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert result.returncode == 1, result.stderr
    assert (
        "The risk manager's state on disk disagrees with simulated's own positions: AAPL "
        "(simulated 5, risk on disk 0)." in " ".join(result.stdout.split())
    )
    assert children_of(data_dir) == {}
