"""`tradingsystem backtest search` on small data: the space from the strategy's model and its
overrides, a seed that repeats a study, pruning, the Pareto front of two objectives, a study
resumed from its journal, N worker processes finishing the grid one worker finishes, and the
Indexed Job it renders for Kubernetes, valid against the official schema."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components import cli
from components.backtest import search
from components.core.errors import ConfigError
from components.strategy.sma_cross import SmaCrossParams

SMA = "components.strategy.sma_cross:SmaCross"


@pytest.fixture(scope="module")
def walk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """600 daily bars of a seeded random walk."""
    rng = random.Random(17)
    price = 100.0
    lines = ["ts_ns,open,high,low,close,volume"]
    for day in range(600):
        close = max(1.0, price * math.exp(rng.gauss(0.0002, 0.015)))
        high, low = max(price, close) * 1.002, min(price, close) * 0.998
        ts_ns = (946_684_800 + day * 86_400) * 10**9
        lines.append(f"{ts_ns},{price:.2f},{high:.2f},{low:.2f},{close:.2f},1000")
        price = float(f"{close:.2f}")
    path = tmp_path_factory.mktemp("search") / "walk.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def searched(
    capsys: pytest.CaptureFixture[str], walk: Path, *args: str, command: str = "search"
) -> dict[str, Any]:
    argv = ["backtest", command, "--strategy", SMA, "--data", str(walk), "--symbol", "SIM"]
    argv += ["--sizing", "fraction", "--allow-short", "true", "--json", *args]
    code = cli.main(argv)
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_search_space_when_model_has_lower_bounds_then_upper_bound_from_default() -> None:
    space = search.search_space(SmaCrossParams, {})
    assert (space["fast"].low, space["fast"].high, space["fast"].integer) == (1, 30, True)
    assert (space["slow"].low, space["slow"].high) == (2, 80)


def test_search_space_when_overridden_or_fixed_then_override_wins_and_fixed_is_left_out() -> None:
    space = search.search_space(SmaCrossParams, {"slow": 40}, ["fast=5:20:5"])
    assert list(space) == ["fast"]
    assert space["fast"].grid() == [5, 10, 15, 20]


@pytest.mark.parametrize(
    "spec", ["nope=1:2", "fast=9:2", "fast=1.5:3", "fast", "fast=a:b"], ids=str
)
def test_search_space_when_override_is_bad_then_config_error_names_it(spec: str) -> None:
    with pytest.raises(ConfigError, match="--param"):
        search.search_space(SmaCrossParams, {}, [spec])


def test_search_when_same_seed_then_same_trials_and_hopeless_ones_pruned(
    capsys: pytest.CaptureFixture[str], walk: Path
) -> None:
    one = searched(capsys, walk, "--trials", "30", "--seed", "4")
    two = searched(capsys, walk, "--trials", "30", "--seed", "4")
    assert one == two
    assert one["trials"].get("complete", 0) + one["trials"].get("pruned", 0) == 30
    assert one["trials"].get("pruned", 0) > 0  # slow <= fast, or behind the median
    best = one["best"][0]
    assert (
        set(best["params"]) == {"fast", "slow"} and best["params"]["fast"] < best["params"]["slow"]
    )


def test_search_when_two_objectives_then_pareto_front_is_not_dominated(
    capsys: pytest.CaptureFixture[str], walk: Path
) -> None:
    result = searched(
        capsys, walk, "--trials", "20", "--seed", "2", "--objective", "sharpe",
        "--objective", "max_drawdown",
    )  # fmt: skip
    front = result["pareto_front"]
    assert front
    for a in front:
        for b in front:
            dominates = (
                b["values"]["sharpe"] >= a["values"]["sharpe"]
                and b["values"]["max_drawdown"] <= a["values"]["max_drawdown"]
                and b["values"] != a["values"]
            )
            assert not dominates, (a, b)


def test_search_when_resumed_from_its_journal_then_the_study_goes_on(
    capsys: pytest.CaptureFixture[str], walk: Path, tmp_path: Path
) -> None:
    journal = str(tmp_path / "study.journal")
    first = searched(capsys, walk, "--trials", "6", "--seed", "1", "--storage", journal)
    again = searched(capsys, walk, "--trials", "10", "--seed", "1", "--storage", journal)
    assert sum(first["trials"].values()) == 6
    assert sum(again["trials"].values()) == 10


def test_search_when_two_workers_share_a_journal_then_same_grid_best_as_one_worker(
    capsys: pytest.CaptureFixture[str], walk: Path, tmp_path: Path
) -> None:
    grid = ("--sampler", "grid", "--param", "fast=4:16:4", "--param", "slow=20:50:10")
    alone = searched(capsys, walk, *grid, "--storage", str(tmp_path / "one.journal"))
    shared = searched(
        capsys, walk, *grid, "--storage", str(tmp_path / "two.journal"), "--workers", "2"
    )
    assert alone["trials"] == {"complete": 16}
    assert shared["trials"].get("complete", 0) >= 16  # a grid point may run twice in parallel
    assert shared["best"][0]["params"] == alone["best"][0]["params"]
    assert shared["best"][0]["values"] == alone["best"][0]["values"]


def test_search_when_kubernetes_then_an_indexed_job_valid_against_the_official_schema(
    capsys: pytest.CaptureFixture[str], walk: Path
) -> None:
    argv = ["backtest", "search", "--strategy", SMA, "--data", str(walk), "--symbol", "SIM"]
    argv += ["--trials", "200", "--param", "fast=5:50", "--kubernetes", "--completions", "8"]
    argv += ["--parallelism", "4", "--study-name", "SPY sma", "--image", "ts:1"]
    code = cli.main(argv)
    assert code == 0
    job = yaml.safe_load(capsys.readouterr().out)
    kubernetes_validate.validate(job, "1.31", strict=True)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"]) == ("Indexed", 8, 4)
    pod = spec["template"]["spec"]
    args = pod["containers"][0]["args"]
    assert args[:2] == ["backtest", "search"] and "--kubernetes" not in args
    assert args[args.index("--storage") + 1] == "/study/spy-sma-search.journal"
    assert args[args.index("--data") + 1] == "/data/walk.csv"
    assert args[args.index("--trials") + 1] == "200"
    assert args[args.index("--worker-index") + 1] == "$(WORKER_INDEX)"
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]}
    assert claims == {"data": "backtest-data", "study": "backtest-study"}


def test_backtest_when_no_subcommand_and_no_strategy_then_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["backtest", "--data", "x.csv"]) == 2
    assert "--strategy" in capsys.readouterr().err


def test_search_when_trials_fall_behind_the_median_then_pruned_before_their_end(
    capsys: pytest.CaptureFixture[str], walk: Path, tmp_path: Path
) -> None:
    """Every point is valid here (fast < slow): a pruned trial was stopped by the pruner, at an
    intermediate step, after reporting the return so far."""
    import optuna

    journal = str(tmp_path / "study.journal")
    searched(
        capsys, walk, "--trials", "40", "--seed", "5", "--param", "fast=2:10",
        "--param", "slow=20:60", "--storage", journal,
    )  # fmt: skip
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(journal))
    study = optuna.load_study(study_name="backtest", storage=storage)
    pruned = [t for t in study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert pruned
    for trial in pruned:
        assert "reason" not in trial.user_attrs  # not refused by the model: cut short
        assert 0 < len(trial.intermediate_values) < search.PRUNE_STEPS
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert all(len(t.intermediate_values) == search.PRUNE_STEPS - 1 for t in complete)
