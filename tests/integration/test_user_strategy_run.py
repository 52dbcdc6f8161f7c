"""The user strategy of `examples/strategies/`, written outside the package, runs unchanged in
`tradingsystem run`: named by its file path in the spec, it reads bars from the real market-data
process, and its signals become approved orders through the real risk manager."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from components.risk import statelog

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "strategies" / "rsi_reversion.py"


def test_run_when_strategy_is_a_file_outside_the_package_then_it_trades(tmp_path: Path) -> None:
    config = tmp_path / "user.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "symbols": ["AAPL", "MSFT"],
                "marketdata": {"feed": {"synthetic": {"tick_interval_ms": 20}}},
                "strategy": {
                    "class_path": f"{EXAMPLE}:RsiReversion",
                    # Short and wide: 1 s bars of a random walk cross these every few seconds.
                    "params": {"period": 2, "oversold": 45, "overbought": 55},
                    "order_quantity": "3",
                },
                "risk": {"limits": {"max_position": "1000", "max_notional": "1000000"}},
            }
        )
    )
    data_dir = tmp_path / "var"
    command = [sys.executable, "-m", "components", "run", str(config), "--duration", "8"]
    result = subprocess.run(
        [*command, "--data-dir", str(data_dir), "--plain"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in (data_dir / "logs" / "strategy.log").open()]
    messages = [str(line.get("message", line.get("msg", ""))) for line in lines]
    assert any("Strategy rsi_reversion reads 1s bars." in m for m in messages), messages[:5]
    signals = [m for m in messages if m.startswith("Signal ") and "(rsi " in m]
    assert signals, "the user strategy gave no signal"
    approved = [
        r
        for r in statelog.read(data_dir / "risk" / statelog.STATE_LOG_NAME)
        if isinstance(r, statelog.OrderApproved)
    ]
    assert approved and {a.order.quantity for a in approved} == {3}
