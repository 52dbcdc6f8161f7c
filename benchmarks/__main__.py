"""`python -m benchmarks [--json] [--only NAME ...]`: run the benchmarks, print one table.

Each benchmark is a module of this package with `run() -> list[Result]`, listed in `BENCHMARKS`
in the order they run. To add one (e.g. `latency` for tick-to-order), write the module and add it
to the list.

Exit code: 0 when every benchmark ran (whether or not it met its target), 1 when one failed to run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from types import ModuleType

from benchmarks import (
    backtest,
    broker,
    codec,
    execution,
    indicators,
    kubernetes,
    latency,
    marketdata,
    risk,
    search,
)
from benchmarks.results import Result

BENCHMARKS: list[ModuleType] = [
    codec,
    broker,
    latency,
    indicators,
    backtest,
    search,
    execution,
    marketdata,
    kubernetes,
    risk,
]


def _name(module: ModuleType) -> str:
    return module.__name__.rpartition(".")[2]


def _run(module: ModuleType) -> tuple[list[Result], bool]:
    run: Callable[[], list[Result]] = module.run
    try:
        return run(), True
    except Exception as exc:
        traceback.print_exc(file=sys.stderr)
        failed = Result(_name(module), "-", "error", False, f"{type(exc).__name__}: {exc}")
        return [failed], False


def _table(results: list[Result], elapsed_s: float) -> None:
    """The four columns in a table; each row's note below it, where long notes can wrap."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"TradingSystem benchmarks ({elapsed_s:.1f} s)", title_justify="left")
    table.add_column("benchmark", no_wrap=True)
    table.add_column("target", no_wrap=True)
    table.add_column("measured", justify="right", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    styles = {True: "green", False: "bold red", None: "dim"}
    for result in results:
        verdict = f"[{styles[result.meets]}]{result.verdict}[/]"
        table.add_row(result.name, result.target, result.measured, verdict)
    console = Console()
    console.print(table)
    for result in results:
        if result.note:
            console.print(f"[bold]{result.name}[/]: {result.note}", highlight=False)


def main(argv: Sequence[str] | None = None) -> int:
    names = [_name(module) for module in BENCHMARKS]
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--only", nargs="+", choices=names, metavar="NAME", help=", ".join(names))
    args = parser.parse_args(argv)

    started = time.monotonic()
    results: list[Result] = []
    all_ran = True
    for module in BENCHMARKS:
        if args.only and _name(module) not in args.only:
            continue
        module_results, ran = _run(module)
        results.extend(module_results)
        all_ran = all_ran and ran
    elapsed_s = time.monotonic() - started

    if args.json:
        print(json.dumps([result.to_json() for result in results], indent=2, ensure_ascii=False))
    else:
        _table(results, elapsed_s)
    return 0 if all_ran else 1


if __name__ == "__main__":
    raise SystemExit(main())
