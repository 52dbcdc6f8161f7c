"""`tradingsystem backtest`: run a strategy over a data file, or a grid of its parameters.

    tradingsystem backtest --strategy sma_cross \\
        --data spy.csv --params '{"fast": 10, "slow": 50}' --fraction 1 --sizing fraction \\
        --commission-rate 0.0005 --allow-short --report spy.html --trades-csv spy-trades.csv

    tradingsystem backtest --strategy ... --data spy.csv --grid fast=5,10,20 \\
        --grid slow=50,100,200 --sort-by sharpe

`--strategy` is a built-in's name (`sma_cross`, `breakout`, `mean_reversion`, `onnx`),
`module:Class` or `path/file.py:Class`. `--system FILE` runs the risk manager with that
TradingSystem's risk config (limits, circuit breaker, stops), initial cash excepted. Every
`BacktestConfig` field is an option (`--initial-cash`, `--fill`, `--spread-bps`, ...; a boolean
is a flag: `--allow-short`, `--no-close-at-end`), or comes from `--config FILE` (YAML); options
win. Prints the figures with their definitions (a progress bar on stderr while it runs), or with
`--json` the whole result (stats, round trips, open positions, equity curve, prices) as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import yaml

from components.backtest import options, research
from components.backtest.config import BacktestConfig
from components.core.config import RiskConfig, load_spec
from components.core.errors import ConfigError

EXIT_OK = 0
SOURCE = "backtest"


class _DefaultsHelpFormatter(argparse.HelpFormatter):
    """Each option's default after its help, unless the help says it already, or there is none
    to tell (required, unset, an off flag): argparse's own formatter prints "(default: None)"."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or action.required
            or default in (None, argparse.SUPPRESS)
            or (action.nargs == 0 and default is False)
        ):
            return action.help
        return f"{text} (default: %(default)s)"


def add_parser(commands: Any) -> None:
    """Register `backtest` on the `tradingsystem` subcommands."""
    parser = commands.add_parser(
        "backtest",
        help="run a strategy over historical data (or a grid of its parameters)",
        description=__doc__.split("\n")[0],
        formatter_class=_DefaultsHelpFormatter,
    )
    parser.add_argument(
        "--strategy",
        required=True,
        help="a built-in's name (sma_cross, breakout, mean_reversion, onnx), module:Class or "
        "path/file.py:Class",
    )
    parser.add_argument(
        "--data", required=True, nargs="+", type=Path, help="CSV or Parquet file(s)"
    )
    parser.add_argument("--params", default="{}", help="the strategy's parameters (JSON or YAML)")
    parser.add_argument("--symbol", help="symbol of rows without a symbol column")
    parser.add_argument(
        "--timeframe-s",
        type=int,
        help="bar length in seconds (default: the timeframe column, else the smallest gap)",
    )
    parser.add_argument("--config", type=Path, help="YAML file of backtest settings")
    parser.add_argument(
        "--system",
        type=Path,
        help="a TradingSystem spec or manifest: its risk config (limits, breaker, stops) applies",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--report", type=Path, help="write an HTML report here")
    parser.add_argument("--trades-csv", type=Path, help="write the round trips here, as CSV")
    parser.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="sweep a parameter over values (repeat for a grid)",
    )
    parser.add_argument("--sort-by", default="sharpe", help="the stat that ranks a sweep")
    parser.add_argument("--workers", type=int, help="processes for a sweep (default: CPUs)")
    settings = parser.add_argument_group("backtest settings (BacktestConfig)")
    for name, field in BacktestConfig.model_fields.items():
        # Unset (None) unless given, so that --config's values stand; the help states the
        # model's default (the formatter adds nothing to a help that already says "default").
        default = "" if field.default is None else f"(default: {field.default})"
        if field.annotation is bool:
            settings.add_argument(
                f"--{name.replace('_', '-')}",
                dest=f"setting_{name}",
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{field.description} {default}".strip(),
            )
            continue
        settings.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"setting_{name}",
            metavar=name.upper(),
            help=f"{field.description} {default}".strip(),
        )
    parser.set_defaults(handler=main)
    research.add_subcommands(parser)  # search, walk-forward: their own module


def _grid(specs: list[str]) -> dict[str, list[Any]]:
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        name, sep, values = spec.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(SOURCE, [f"--grid {spec!r}: expected NAME=V1,V2,..."])
        grid[name.strip()] = [yaml.safe_load(v) for v in values.split(",")]
    return grid


def main(args: argparse.Namespace) -> int:
    if (code := research.dispatch(args)) is not None:
        return code
    # Here, not at the top: `tradingsystem run` should not pay for pyarrow's import.
    from components.backtest import data, report, results, stats
    from components.backtest.engine import Backtest
    from components.strategy.base import load_strategy

    config = options.backtest_config(args, SOURCE)
    params = options.mapping(args.params, "--params", SOURCE)
    risk = load_spec(args.system)[1].risk if args.system is not None else None
    if args.grid:
        return _sweep(args, config, params, risk)
    strategy = load_strategy(args.strategy, params, SOURCE)
    started = time.perf_counter()
    events = data.load_all(args.data, args.symbol, args.timeframe_s)
    loaded = time.perf_counter()
    run = _with_progress(
        lambda progress: Backtest(strategy, config, risk).run(events, progress),
        len(events),
        "backtest",
        quiet=args.json,
    )
    elapsed = time.perf_counter() - loaded
    result = results.summary(run, params, stats.closes_of(events))
    if args.report is not None:
        args.report.write_text(report.render(result))
    if args.trades_csv is not None:
        args.trades_csv.write_text(results.trades_csv(result))
    if args.json:
        print(results.to_json(result))
        return EXIT_OK
    _print_stats(result, len(events), loaded - started, elapsed, args.report)
    return EXIT_OK


def _with_progress(work: Any, total: int, label: str, quiet: bool) -> Any:
    if quiet:
        return work(None)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    with Progress(
        f"[bold]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=total)
        return work(lambda done: progress.update(task, completed=done))


def _print_stats(
    result: dict[str, Any], events: int, load_s: float, run_s: float, path: Path | None
) -> None:
    from rich.console import Console
    from rich.table import Table

    from components.backtest import stats

    table = Table(title=f"Backtest of {result['strategy']}", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_column("definition", style="dim")
    for name, value in result["stats"].items():
        definition = stats.FIGURES[name].definition if name in stats.FIGURES else ""
        table.add_row(name, stats.display(name, value), definition)
    console = Console()
    console.print(table)
    console.print(
        "Returns: simple per-bar returns, annualized with periods_per_year, risk-free 0; "
        "profit factor in money; trade figures over closed trades (open: open_pnl).",
        highlight=False,
    )
    rate = events / run_s if run_s > 0 else float("inf")
    console.print(
        f"{events:,} events: loaded in {load_s:.2f} s, run in {run_s:.2f} s ({rate:,.0f}/s)."
        + (f" Report: {path}" if path else ""),
        highlight=False,
    )


def _sweep(
    args: argparse.Namespace,
    config: BacktestConfig,
    params: dict[str, Any],
    risk: RiskConfig | None,
) -> int:
    from components.backtest import stats, sweep

    grid = _grid(args.grid)
    known = set(stats.STAT_NAMES)
    if args.sort_by not in known:
        raise ConfigError(
            SOURCE,
            [f"--sort-by: unknown stat {args.sort_by!r} (one of {', '.join(sorted(known))})"],
        )
    total = len(sweep.grid_points(grid))
    rows = _with_progress(
        lambda progress: sweep.sweep(
            args.strategy,
            params,
            grid,
            config,
            [str(p) for p in args.data],
            sort_by=args.sort_by,
            risk=risk,
            workers=args.workers,
            symbol=args.symbol,
            timeframe_s=args.timeframe_s,
            done=progress,
        ),
        total,
        "sweep",
        quiet=args.json,
    )
    if args.json:
        print(json.dumps([{"params": p, "stats": s} for p, s in rows], indent=1))
        return EXIT_OK
    from rich.console import Console
    from rich.table import Table

    shown = [args.sort_by] + [
        s
        for s in ("total_return", "sharpe", "max_drawdown", "trades", "win_rate")
        if s != args.sort_by
    ]
    table = Table(title=f"Sweep of {args.strategy}, by {args.sort_by}", title_justify="left")
    for name in grid:
        table.add_column(name, justify="right")
    for name in shown:
        table.add_column(name, justify="right")
    for point, figures in rows:
        table.add_row(
            *(str(point[n]) for n in grid), *(stats.display(s, figures[s]) for s in shown)
        )
    Console().print(table)
    return EXIT_OK
