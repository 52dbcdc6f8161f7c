"""`tradingsystem backtest` in-process: the JSON result and the HTML report (same bytes twice),
settings from options and from a file, the parameter sweep in parallel processes ranked by a
stat, and bad input refused with exit code 2 (config) or 1 (data), one line, no traceback."""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from components import cli
from components.backtest import results, stats

SMA = "components.strategy.sma_cross:SmaCross"
ROOT = Path(__file__).resolve().parents[3]


def backtest(data: Path, *args: str) -> int:
    return cli.main(["backtest", "--strategy", SMA, "--data", str(data), *args])


@pytest.fixture
def daily(tmp_path: Path) -> Path:
    """300 daily bars of a seeded random walk."""
    rng = random.Random(5)
    path = tmp_path / "walk.csv"
    price = 100.0
    lines = ["timestamp,open,high,low,close,volume"]
    for day in range(300):
        close = round(price * (1 + rng.gauss(0, 0.015)), 2)
        high, low = max(price, close) + 0.1, min(price, close) - 0.1
        lines.append(f"{day * 86_400},{price:.2f},{high:.2f},{low:.2f},{close:.2f},1000")
        price = close
    # Epoch seconds are not ISO 8601: name the column ts_ns and scale.
    lines = ["ts_ns" + lines[0][len("timestamp") :]] + [
        f"{int(row.split(',')[0]) * 10**9}{row[row.index(',') :]}" for row in lines[1:]
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_backtest_when_json_then_result_has_stats_trades_equity(
    daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = backtest(
        daily,
        *("--params", '{"fast": 5, "slow": 20}', "--json", "--sizing", "fraction"),
        *("--commission-per-order", "1", "--allow-short"),
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["strategy"] == "sma_cross" and result["params"] == {"fast": 5, "slow": 20}
    assert result["config"]["sizing"] == "fraction" and result["config"]["allow_short"] is True
    assert result["stats"]["trades"] == len(result["trades"]) > 0
    assert len(result["equity"]) == 300
    fees = sum(float(t["fees"]) for t in result["trades"])
    assert fees == pytest.approx(float(result["stats"]["commissions"]))  # 1 per fill, all closed
    sides = {t["side"] for t in result["trades"]}
    assert sides == {"long", "short"}


def test_backtest_when_report_then_same_html_bytes_every_run(daily: Path, tmp_path: Path) -> None:
    pages = []
    for n in range(2):
        out = tmp_path / f"report{n}.html"
        assert backtest(daily, "--report", str(out), "--json") == 0
        pages.append(out.read_bytes())
    assert pages[0] == pages[1]
    page = pages[0].decode()
    assert page.count("<svg") == 3 and "Drawdown" in page and "Round trips" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no network


def test_backtest_when_settings_file_and_option_then_option_wins(
    daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = tmp_path / "bt.yaml"
    settings.write_text("initial_cash: 5000\nfill: close\nquantity: 3\n")
    code = backtest(daily, "--config", str(settings), "--quantity", "7", "--json")
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["fill"] == "close" and result["config"]["initial_cash"] == "5000"
    assert {t["quantity"] for t in result["trades"]} == {"7"}


def test_backtest_when_grid_then_points_ranked_by_stat_across_processes(daily: Path) -> None:
    """Through the real command (its worker processes end with it)."""
    command = [sys.executable, "-m", "components", "backtest", "--strategy", SMA]
    grid = ["--grid", "fast=3,5", "--grid", "slow=10,30", "--sort-by", "total_return"]
    result = subprocess.run(
        [*command, "--data", str(daily), "--json", "--workers", "2", *grid],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert sorted((r["params"]["fast"], r["params"]["slow"]) for r in rows) == [
        (3, 10),
        (3, 30),
        (5, 10),
        (5, 30),
    ]
    returns = [r["stats"]["total_return"] for r in rows]
    assert returns == sorted(returns, reverse=True)
    assert len(set(returns)) > 1  # the points differ, so the order means something


def test_backtest_when_one_point_then_same_stats_as_in_a_sweep(
    daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from components.backtest import config, sweep

    sweep._load([str(daily)], None, None)  # what each worker does first
    in_sweep = sweep.run_point(SMA, {"fast": 3, "slow": 10}, config.BacktestConfig())
    assert backtest(daily, "--json", "--params", '{"fast": 3, "slow": 10}') == 0
    alone = json.loads(capsys.readouterr().out)["stats"]
    # The benchmark needs the prices, which a sweep's point does not pass to stats.compute.
    benchmark = {"buy_hold_return", "alpha", "beta"}
    assert alone["buy_hold_return"] is not None and in_sweep["buy_hold_return"] is None
    assert {k: v for k, v in alone.items() if k not in benchmark} == {
        k: v for k, v in in_sweep.items() if k not in benchmark
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--params", '{"fast": 9, "slow": 3}'], "strategy.params.slow: must be greater than"),
        (["--fill", "sometimes"], "fill: Input should be 'next_open', 'close' or 'quote'"),
        (["--grid", "fast=1,2", "--grid", "slow=2,0"], "strategy.params.slow"),
        (["--grid", "fast"], "--grid 'fast': expected NAME=V1,V2,..."),
        (["--grid", "fast=1,2", "--sort-by", "luck"], "--sort-by: unknown stat 'luck'"),
        (["--params", "[1, 2]"], "--params: expected a mapping, found list"),
    ],
)
def test_backtest_when_config_invalid_then_exit_2_with_the_field(
    daily: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert backtest(daily, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_backtest_when_data_symbol_not_a_ticker_then_exit_2_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "crypto.csv"
    path.write_text("date,symbol,open,high,low,close\n2024-01-02,btc-usd,1,2,0.5,1.5\n")
    assert backtest(path, "--timeframe-s", "86400") == 2
    err = capsys.readouterr().err
    assert "symbols.0: String should match pattern" in err and "(was 'btc-usd')" in err


def test_backtest_when_data_invalid_then_exit_1_naming_the_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("date,open,high,low,close\n2024-01-02,1,2,0.5,1.5\n2024-01-03,1,2,0.5,0\n")
    assert backtest(path) == 1
    assert "row 2: close: price must be > 0" in capsys.readouterr().err


def test_backtest_when_run_in_two_processes_then_json_and_report_byte_identical(
    daily: Path, tmp_path: Path
) -> None:
    """Different hash seeds, separate processes: nothing in the output may depend on either."""
    outputs = []
    for seed in ("1", "2"):
        report_path = tmp_path / f"r{seed}.html"
        command = [sys.executable, "-m", "components", "backtest", "--strategy", SMA]
        options = ["--params", "{fast: 3, slow: 12}", "--sizing", "fraction", "--allow-short"]
        result = subprocess.run(
            [*command, "--data", str(daily), "--json", "--report", str(report_path), *options],
            cwd=ROOT,
            capture_output=True,
            timeout=60,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        assert result.returncode == 0, result.stderr
        outputs.append((result.stdout, report_path.read_bytes()))
    assert outputs[0] == outputs[1]
    assert json.loads(outputs[0][0])["stats"]["trades"] > 5


def test_backtest_when_example_strategy_on_example_data_then_it_trades(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The commands the README shows work on the files it names."""
    example = ROOT / "examples" / "strategies" / "rsi_reversion.py"
    data = ROOT / "examples" / "data" / "sample_daily.csv"
    assert backtest(data, "--json", "--sizing", "fraction") == 0  # the SMA crossover
    assert json.loads(capsys.readouterr().out)["stats"]["trades"] > 0
    code = cli.main(["backtest", "--strategy", f"{example}:RsiReversion", "--data", str(data)])
    assert code == 0
    assert "Backtest of rsi_reversion" in capsys.readouterr().out


def test_backtest_when_system_spec_has_stops_then_the_risk_manager_closes_losers(
    daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    system = tmp_path / "system.yaml"
    system.write_text(
        "symbols: [WALK]\n"
        "risk:\n"
        "  limits: {max_position: 1000000, max_notional: 1000000000, max_order_value: 1000000000}\n"
        "  breaker: {max_move_pct: 100, max_drawdown_pct: 100}\n"
        "  stops: {stop_loss_pct: 1}\n"
    )
    assert backtest(daily, "--json", "--params", "{fast: 5, slow: 20}") == 0
    without = json.loads(capsys.readouterr().out)
    assert (
        backtest(daily, "--json", "--params", "{fast: 5, slow: 20}", "--system", str(system)) == 0
    )
    with_stops = json.loads(capsys.readouterr().out)
    # A 1 % stop cuts losing trades short: no round trip loses much more than 1 % (plus a gap).
    worst = min(float(t["return_pct"]) for t in with_stops["trades"])
    assert worst > -5 > min(float(t["return_pct"]) for t in without["trades"])
    assert with_stops["stats"]["trades"] >= without["stats"]["trades"]


@pytest.mark.parametrize("name", ["sma_cross", "breakout", "mean_reversion"])
def test_backtest_when_strategy_is_a_builtin_short_name_then_it_runs(
    daily: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    code = cli.main(["backtest", "--strategy", name, "--data", str(daily), "--json"])
    assert code == 0, capsys.readouterr().err
    assert json.loads(capsys.readouterr().out)["strategy"] == name


@pytest.mark.parametrize(
    ("strategy", "message"),
    [
        ("sma-cross", "strategy.class_path: 'sma-cross' is no built-in strategy (one of"),
        (":SmaCross", "strategy.class_path: cannot import module ''"),
        (".sma_cross:SmaCross", "strategy.class_path: cannot import module '.sma_cross'"),
    ],
)
def test_backtest_when_strategy_name_malformed_then_exit_2_without_traceback(
    daily: Path, capsys: pytest.CaptureFixture[str], strategy: str, message: str
) -> None:
    assert cli.main(["backtest", "--strategy", strategy, "--data", str(daily)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_backtest_when_help_then_every_option_shows_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["backtest", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal's width
    assert "(default: 100000)" in text and "(default: next_open)" in text
    assert "--allow-short, --no-allow-short" in text and "(default: False)" in text
    assert "--close-at-end, --no-close-at-end" in text and "(default: True)" in text
    assert "--sort-by SORT_BY" in text and "(default: sharpe)" in text
    assert "(default: None)" not in text
    assert not re.search(r"\(default: [^)]*\) \(default:", text)  # nothing said twice


def test_backtest_when_boolean_flags_then_set_without_a_value(
    daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = tmp_path / "report.html"
    flags = ("--allow-short", "--no-close-at-end", "--sizing", "fraction")
    assert backtest(daily, "--json", *flags, "--report", str(page)) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["config"]["allow_short"] is True and result["config"]["close_at_end"] is False
    (position,) = result["open_positions"]  # the SMA cross is always in, long or short
    assert result["stats"]["open_positions"] == 1
    assert position["symbol"] == "WALK" and position["side"] in {"long", "short"}
    gross = Decimal(position["unrealized_pnl"]) - Decimal(position["fees"])
    assert gross == Decimal(position["pnl"])
    assert round(Decimal(position["pnl"]), 2) == Decimal(result["stats"]["open_pnl"])
    assert "Open at the end" in page.read_text() and "open: " in page.read_text()
    net = Decimal(result["stats"]["realized_pnl"]) + Decimal(result["stats"]["open_pnl"])
    assert net == Decimal(result["stats"]["net_pnl"])


def test_backtest_when_trades_csv_then_one_row_per_round_trip_at_the_tick(
    daily: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "trades.csv"
    assert backtest(daily, "--json", "--trades-csv", str(out), "--sizing", "fraction") == 0
    result = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == len(result["trades"]) > 0
    assert list(rows[0]) == list(results.TRADE_COLUMNS)
    assert all(re.fullmatch(r"\d+\.\d\d", row["entry_price"]) for row in rows)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", row["exit_time"]) for row in rows)
    assert [row["pnl"] for row in rows] == [trade["pnl"] for trade in result["trades"]]


def test_backtest_when_report_then_price_chart_benchmark_months_and_definitions(
    daily: Path, tmp_path: Path
) -> None:
    out = tmp_path / "report.html"
    assert backtest(daily, "--json", "--report", str(out), "--sizing", "fraction") == 0
    page = out.read_text()
    assert "WALK: price and trades" in page and "<title>buy " in page and "exit at " in page
    assert "buy and hold" in page and "Monthly returns" in page
    assert stats.FIGURES["sharpe"].definition in page
    assert "simple per-bar returns" in page and "profit factor is in money" in page


def test_backtest_when_table_then_percentages_days_and_definitions(
    daily: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert backtest(daily, "--sizing", "fraction") == 0
    out = " ".join(re.sub("[│┃┏┓┗┛━─┡┩└┘┌┐╇┳┻]", " ", capsys.readouterr().out).split())
    assert re.search(r"total_return -?[\d,]+\.\d\d %", out)
    assert re.search(r"max_drawdown_duration_s [\d,]+\.\d d", out)
    assert "buy_hold_return" in out and stats.FIGURES["kelly"].definition[:30] in out
