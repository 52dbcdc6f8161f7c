"""`search`: trials per second of `tradingsystem backtest search` with 1 and 2 worker processes
sharing one journal file, on the backtest benchmark's random walk (`BARS` daily bars), SMA cross
over a random sampler (no pruning: every trial is a whole backtest). Wall time, start-up of the
worker processes included: that is what a user waits for. On a machine of one free core the two
workers cannot beat one.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from pathlib import Path

from benchmarks.backtest import write_bars
from benchmarks.results import Result
from components import cli

BARS = 20_000
TRIALS = 40


def _rate(path: Path, journal: Path, workers: int) -> tuple[float, dict[str, int]]:
    argv = ["backtest", "search", "--strategy", "components.strategy.sma_cross:SmaCross"]
    argv += ["--data", str(path), "--symbol", "SIM", "--sampler", "random", "--seed", "1"]
    argv += ["--trials", str(TRIALS), "--no-prune", "--storage", str(journal), "--json"]
    argv += ["--workers", str(workers), "--param", "fast=2:40", "--param", "slow=41:200"]
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = cli.main(argv)
    elapsed = time.perf_counter() - started
    if code != 0:
        raise RuntimeError(f"backtest search exited {code}")
    states: dict[str, int] = json.loads(out.getvalue())["trials"]
    return sum(states.values()) / elapsed, states


def run() -> list[Result]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "daily.csv"
        write_bars(path, BARS)
        for workers in (1, 2):
            rate, states = _rate(path, Path(tmp) / f"study-{workers}.journal", workers)
            rows.append(
                Result(
                    name=f"search.workers_{workers}",
                    target="context",
                    measured=f"{rate:,.1f} trials/s",
                    meets=None,
                    note=(
                        f"{TRIALS} random trials of SMA cross on {BARS:,} bars, {workers} "
                        f"process(es) on one journal, wall time; trials {states}"
                    ),
                    values={"trials_per_s": rate},
                )
            )
    return rows
