"""`tradingsystem` and `kubectl-trading`: the command line.

Exit codes: 0 success, 1 failure at run time, 2 invalid usage or config (one line per problem, no
traceback).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path

import prometheus_client as prom

from components import catalog
from components.backtest import command as backtest
from components.core.config import load_spec
from components.core.errors import ConfigError, TradingSystemError
from components.marketdata import fetch

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"must be > 0 (was {text})")
    return seconds


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradingsystem", description="Run and inspect a TradingSystem."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="run every component as a local process")
    run.add_argument("config", nargs="?", type=Path, help="spec or TradingSystem manifest")
    run.add_argument("--data-dir", type=Path, default=Path("var"), help="state and logs (./var)")
    run.add_argument("--duration", type=_seconds, help="stop after this many seconds")
    run.add_argument("--plain", action="store_true", help="no live view, progress lines only")

    component = commands.add_parser("component", help="run one component, as its pod does")
    component.add_argument("name", choices=sorted(catalog.COMPONENTS))
    component.add_argument("--config", type=Path, required=True, help="spec or manifest file")

    validate = commands.add_parser("validate", help="check a spec or manifest offline")
    validate.add_argument("file", type=Path)

    backtest.add_parser(commands)
    fetch.add_parser(commands)

    commands.add_parser("crd", help="print the TradingSystem CRD, generated from the spec models")

    state = commands.add_parser("state", help="read the state logs of a data directory offline")
    state.add_argument("data_dir", type=Path, help="a run's data directory, or a component's")
    state.add_argument("--json", action="store_true", help="JSON for machines")
    state.add_argument(
        "--repair",
        action="store_true",
        help="move each damaged journal's damaged lines and all after them to a side file",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "crd":
            from components import crd

            return crd.main()
        if args.command == "validate":
            return _validate(args.file)
        if args.command == "state":
            from components import state_report

            return state_report.main(args.data_dir, as_json=args.json, repair_damage=args.repair)
        if args.command == "component":
            return _component(args.name, args.config)
        if args.command == "backtest":
            return backtest.main(args)
        if args.command == "data":
            return fetch.main(args)
        if args.command == "run":
            from components import local

            return local.main(args.config, args.data_dir, args.duration, plain=args.plain)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except TradingSystemError as exc:  # e.g. a damaged state log: say so, no traceback
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_FAILED
    raise AssertionError(f"unhandled command {args.command}")


def _validate(path: Path) -> int:
    from components.strategy.base import load_strategy

    name, spec = load_spec(path)
    # The strategy's parameters are part of the spec, checked by its own model; files a spec
    # names (a replay CSV) live where it runs, so `run` checks those, not this offline check.
    load_strategy(spec.strategy.class_path, spec.strategy.params, str(path))
    print(f"{path}: valid TradingSystem {name!r} trading {', '.join(spec.symbols)}")
    return EXIT_OK


def _component(name: str, config: Path) -> int:
    from components.runtime import jsonlog, settings
    from components.runtime.component import serve

    system_name, spec = load_spec(config)
    runtime = settings.from_environment(name, system_name, spec.broker)
    jsonlog.configure(name, runtime.log_level)
    component = catalog.load(name)(spec, runtime, prom.CollectorRegistry())
    return asyncio.run(serve(component))


def kubectl_main(argv: Sequence[str] | None = None) -> int:
    """`kubectl trading status|halt|resume|breaker` (the `kubectl-trading` console script)."""
    from components import kubectl_plugin

    return kubectl_plugin.main(argv)
