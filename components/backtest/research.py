"""`tradingsystem backtest search` and `tradingsystem backtest walk-forward`: the options and
what they print.

    tradingsystem backtest search --strategy components.strategy.sma_cross:SmaCross \\
        --data spy.csv --param fast=5:50 --param slow=20:200:10 --trials 200 --seed 7 \\
        --objective sharpe --storage study.journal --workers 2

    tradingsystem backtest search ... --objective sharpe --objective max_drawdown  # Pareto front
    tradingsystem backtest search ... --kubernetes --completions 8 --parallelism 4  # a Job
    tradingsystem backtest walk-forward ... --in-sample 500 --out-of-sample 100 [--anchored]

They hang off `backtest` as subcommands (`add_subcommands`), whose own options `--strategy` and
`--data` they repeat; `dispatch` runs one when it was given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from components.backtest import options
from components.backtest.config import BacktestConfig
from components.core.errors import ConfigError

SOURCE = "backtest search"
DEFAULT_IMAGE = "tradingsystem:latest"


def add_subcommands(parser: argparse.ArgumentParser) -> None:
    """`search` and `walk-forward` under `backtest`; `backtest` alone keeps its own options."""
    for action in parser._actions:  # given to the subcommands instead when one is used
        if action.dest in ("strategy", "data") and action.required:
            action.required = False
            parser.set_defaults(**{f"_required_{action.dest}": True})
    subcommands = parser.add_subparsers(dest="research", metavar="{search,walk-forward}")
    search = subcommands.add_parser(
        "search",
        help="search the strategy's parameters with optuna",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _common(search)
    search.add_argument("--workers", type=int, default=1, help="processes sharing the study")
    search.add_argument("--worker-index", type=int, default=0, help="this worker's seed offset")
    search.add_argument("--kubernetes", action="store_true", help="print an Indexed Job instead")
    search.add_argument("--completions", type=int, default=4, help="Job: pods in all")
    search.add_argument("--parallelism", type=int, default=4, help="Job: pods at once")
    search.add_argument("--image", default=DEFAULT_IMAGE, help="Job: container image")
    search.add_argument("--namespace", help="Job: namespace")
    search.add_argument("--data-claim", default="backtest-data", help="Job: claim of the data")
    search.add_argument(
        "--study-claim", default="backtest-study", help="Job: ReadWriteMany claim of the journal"
    )
    walk = subcommands.add_parser(
        "walk-forward",
        help="search in-sample windows, trade the out-of-sample ones",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _common(walk)
    walk.add_argument("--in-sample", type=int, required=True, help="events per in-sample window")
    walk.add_argument(
        "--out-of-sample", type=int, required=True, help="events per out-of-sample window"
    )
    walk.add_argument("--anchored", action="store_true", help="in-sample windows start at 0")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--strategy", required=True, help="module:Class or path/file.py:Class")
    parser.add_argument("--data", required=True, nargs="+", help="CSV or Parquet file(s)")
    parser.add_argument("--params", default="{}", help="fixed parameters (JSON or YAML)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=LOW:HIGH[:STEP]|NAME=A,B",
        help="a searched range or choice (default: from the parameter model)",
    )
    parser.add_argument("--symbol", help="symbol of rows without a symbol column")
    parser.add_argument("--timeframe-s", type=int, help="bar length in seconds")
    parser.add_argument("--config", type=Path, help="YAML file of backtest settings")
    parser.add_argument("--system", type=Path, help="a TradingSystem whose risk config applies")
    parser.add_argument(
        "--objective",
        action="append",
        default=[],
        help="stat to optimise (repeat for several; default sharpe)",
    )
    parser.add_argument("--sampler", choices=("tpe", "random", "grid"), default="tpe")
    parser.add_argument("--trials", type=int, default=50, help="finished trials in all")
    parser.add_argument("--timeout", type=float, help="seconds per worker (or window)")
    parser.add_argument("--seed", type=int, help="seed of the sampler: same seed, same study")
    parser.add_argument("--no-prune", action="store_true", help="run every trial to its end")
    parser.add_argument("--storage", help="journal file of the study (resumable, shared)")
    parser.add_argument("--study-name", default="backtest", help="the study's name in storage")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    settings = parser.add_argument_group("backtest settings (BacktestConfig)")
    for name, field in BacktestConfig.model_fields.items():
        settings.add_argument(
            f"--{name.replace('_', '-')}", dest=f"setting_{name}", help=field.description
        )


def dispatch(args: argparse.Namespace) -> int | None:
    """Run the subcommand given, if any; else check what `backtest` alone needs."""
    if getattr(args, "research", None) is None:
        missing = [
            f"--{name}"
            for name in ("strategy", "data")
            if getattr(args, f"_required_{name}", False) and getattr(args, name, None) is None
        ]
        if missing:
            raise ConfigError("backtest", [f"{', '.join(missing)}: required"])
        return None
    return main(args)


def _search_settings(args: argparse.Namespace) -> Any:
    from components.backtest import search
    from components.core.config import load_spec

    return search.SearchSettings(
        class_path=args.strategy,
        base_params=options.mapping(args.params, "--params", SOURCE),
        overrides=tuple(args.param),
        config=options.backtest_config(args, SOURCE),
        objectives=tuple(args.objective or ["sharpe"]),
        sampler=args.sampler,
        trials=args.trials,
        timeout_s=args.timeout,
        seed=args.seed,
        prune=not args.no_prune,
        storage=args.storage,
        study_name=args.study_name,
        risk=load_spec(args.system)[1].risk if args.system is not None else None,
    )


def search_argv(args: argparse.Namespace) -> list[str]:
    """The search's own options, from what was parsed: what each worker (process or pod) runs,
    less data, storage and worker index, which depend on where it runs."""
    argv = ["--strategy", args.strategy, "--params", args.params, "--study-name", args.study_name]
    for spec in args.param:
        argv += ["--param", spec]
    for objective in args.objective:
        argv += ["--objective", objective]
    argv += ["--sampler", args.sampler, "--trials", str(args.trials)]
    for option, value in (
        ("--symbol", args.symbol),
        ("--timeframe-s", args.timeframe_s),
        ("--config", args.config),
        ("--system", args.system),
        ("--timeout", args.timeout),
        ("--seed", args.seed),
    ):
        if value is not None:
            argv += [option, str(value)]
    if args.no_prune:
        argv.append("--no-prune")
    for name in BacktestConfig.model_fields:
        value = getattr(args, f"setting_{name}", None)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


def _workers(args: argparse.Namespace) -> None:
    """`--workers N`: N processes of this command share the study in `--storage`."""
    import subprocess

    if args.storage is None:
        raise ConfigError(SOURCE, ["--workers above 1 share a study: give --storage FILE"])
    command = [sys.executable, "-c", "from components.cli import main; raise SystemExit(main())"]
    common = ["backtest", "search", *search_argv(args), "--storage", args.storage, "--json"]
    processes = [
        subprocess.Popen(
            [*command, *common, "--worker-index", str(index), "--data", *map(str, args.data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(args.workers)
    ]
    errors = [(p.wait(), p.stderr.read() if p.stderr else "") for p in processes]
    for process in processes:
        if process.stderr:
            process.stderr.close()
    failed = [f"exit {code}: {text.strip()[-300:]}" for code, text in errors if code != 0]
    if failed:
        raise RuntimeError(f"while searching in {args.workers} processes: {'; '.join(failed)}")


def main(args: argparse.Namespace) -> int:
    from components.backtest import search

    settings = _search_settings(args)
    search.check(settings)
    if args.research == "walk-forward":
        return _walk_forward(args, settings)
    if args.kubernetes:
        from components.backtest import jobs

        if args.completions < 1 or not 1 <= args.parallelism <= args.completions:
            raise ConfigError(SOURCE, ["--completions >= 1, 1 <= --parallelism <= completions"])
        search.search_space(
            search.strategy_model(settings.class_path), settings.base_params, settings.overrides
        )
        manifest = jobs.search_job(
            study_name=settings.study_name,
            search_args=search_argv(args),
            data_files=args.data,
            data_claim=args.data_claim,
            study_claim=args.study_claim,
            image=args.image,
            completions=args.completions,
            parallelism=args.parallelism,
            namespace=args.namespace,
        )
        print(yaml.safe_dump(manifest, sort_keys=False), end="")
        return 0
    space = search.search_space(
        search.strategy_model(settings.class_path), settings.base_params, settings.overrides
    )
    if args.workers > 1:
        search.open_study(settings, space, settings.seed)  # made once: the workers load it
        _workers(args)
        study = search.open_study(settings, space, settings.seed)
    else:
        from components.backtest import data

        events = data.load_all(args.data, args.symbol, args.timeframe_s)
        study = search.work(settings, events, args.worker_index)
    result = search.summary(study, settings.objectives)
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    _print_search(result)
    return 0


def _print_search(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    rows = result.get("best") or result.get("pareto_front") or []
    title = "Best trial" if "best" in result else "Pareto front"
    table = Table(title=f"{title} of study {result['study']}", title_justify="left")
    table.add_column("trial", justify="right")
    names = sorted({n for row in rows for n in row["params"]})
    for name in names:
        table.add_column(name, justify="right")
    for objective in result["objectives"]:
        table.add_column(objective, justify="right")
    for row in rows:
        table.add_row(
            str(row["trial"]),
            *(str(row["params"].get(n)) for n in names),
            *(f"{row['values'][o]:.4g}" for o in result["objectives"]),
        )
    console = Console()
    console.print(table)
    counts = ", ".join(f"{count} {state}" for state, count in sorted(result["trials"].items()))
    console.print(f"Trials: {counts}.", highlight=False)


def _walk_forward(args: argparse.Namespace, settings: Any) -> int:
    from components.backtest import data, walkforward

    events = data.load_all(args.data, args.symbol, args.timeframe_s)
    result = walkforward.analyse(
        settings, events, args.in_sample, args.out_of_sample, anchored=args.anchored
    )
    if args.json:
        print(json.dumps(result, indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    objective = result["objective"]
    table = Table(title=f"Walk-forward by {objective}", title_justify="left")
    for column in ("window", "params", "IS return", "OOS return", f"IS {objective}",
                   f"OOS {objective}", "OOS trades"):  # fmt: skip
        table.add_column(column, justify="right", no_wrap=column == "params")

    def shown(value: Any) -> str:
        return "-" if value is None else f"{float(value):.4g}"

    for row in result["windows"]:
        inside, outside = row["in_sample"], row["out_of_sample"]
        table.add_row(
            str(row["window"]),
            " ".join(f"{k}={v}" for k, v in row["params"].items()),
            shown(inside["total_return"]),
            shown(outside["total_return"]),
            shown(inside.get(objective)),
            shown(outside.get(objective)),
            str(outside["trades"]),
        )
    console = Console()
    console.print(table)
    stitched = result["out_of_sample"]
    console.print(
        f"Stitched out-of-sample: {stitched['initial_equity']} -> {stitched['final_equity']} "
        f"({stitched['total_return']:.2%}) over {len(result['equity'])} points.",
        highlight=False,
    )
    return 0
