"""Walk-forward analysis: rolling and anchored windows, and `tradingsystem backtest walk-forward`
on small data: each window searched in-sample and traded out-of-sample with what it chose, each
out-of-sample run starting from the equity the previous one ended with, the stitched curve their
concatenation."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from components import cli
from components.backtest import walkforward
from components.core.errors import ConfigError
from tests.unit.backtest.test_search import SMA, walk  # noqa: F401  (the fixture)


def test_windows_when_rolling_then_in_sample_moves_on_by_the_out_of_sample_length() -> None:
    spans = [(w.in_sample, w.out_of_sample) for w in walkforward.windows(100, 40, 20, False)]
    assert spans == [((0, 40), (40, 60)), ((20, 60), (60, 80)), ((40, 80), (80, 100))]


def test_windows_when_anchored_then_in_sample_starts_at_the_first_event() -> None:
    spans = [(w.in_sample, w.out_of_sample) for w in walkforward.windows(100, 40, 20, True)]
    assert spans == [((0, 40), (40, 60)), ((0, 60), (60, 80)), ((0, 80), (80, 100))]


def test_windows_when_data_too_short_then_config_error_says_so() -> None:
    with pytest.raises(ConfigError, match="no window"):
        walkforward.windows(50, 40, 20, False)


def test_walk_forward_when_run_then_stitched_oos_equity_chains_the_windows(
    capsys: pytest.CaptureFixture[str],
    walk: Path,  # noqa: F811
) -> None:
    argv = ["backtest", "walk-forward", "--strategy", SMA, "--data", str(walk), "--symbol", "SIM"]
    argv += ["--sizing", "fraction", "--allow-short", "true", "--param", "fast=2:10"]
    argv += ["--param", "slow=12:40:4", "--trials", "8", "--seed", "3", "--json"]
    argv += ["--in-sample", "200", "--out-of-sample", "100"]
    code = cli.main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    result = json.loads(out)
    windows = result["windows"]
    assert len(windows) == 4  # 600 events: 200 + 4 x 100
    initial = Decimal(result["out_of_sample"]["initial_equity"])
    carried = initial
    for row in windows:
        assert row["in_sample_ns"][1] < row["out_of_sample_ns"][0]
        assert 2 <= row["params"]["fast"] <= 10 and 12 <= row["params"]["slow"] <= 40
        for side in ("in_sample", "out_of_sample"):
            assert set(row[side]) >= {"total_return", "sharpe", "max_drawdown", "trades"}
        final = Decimal(row["out_of_sample"]["final_equity"])
        assert row["out_of_sample"]["total_return"] == pytest.approx(float(final / carried - 1))
        carried = final
    assert Decimal(result["out_of_sample"]["final_equity"]) == carried
    curve = result["equity"]
    assert len(curve) == 400  # one point per out-of-sample bar
    assert [t for t, _ in curve] == sorted(t for t, _ in curve)
    assert Decimal(curve[-1][1]) == carried


def test_walk_forward_when_two_objectives_then_config_error(
    capsys: pytest.CaptureFixture[str],
    walk: Path,  # noqa: F811
) -> None:
    argv = ["backtest", "walk-forward", "--strategy", SMA, "--data", str(walk), "--symbol", "SIM"]
    argv += ["--objective", "sharpe", "--objective", "max_drawdown"]
    argv += ["--in-sample", "200", "--out-of-sample", "100"]
    code = cli.main(argv)
    assert code == 2
    assert "one --objective" in capsys.readouterr().err
