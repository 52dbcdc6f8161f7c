"""What the backtest command lines read besides their flags, shared by `backtest` (command.py)
and its `search` and `walk-forward` subcommands (research.py): a mapping given as JSON or YAML
text (`--params`, a `--config` file), and the `BacktestConfig` from a `--config` file overlaid
with the `--setting` flags (`setting_<field>` in the parsed arguments)."""

from __future__ import annotations

import argparse
from typing import Any

import pydantic
import yaml

from components.backtest.config import BacktestConfig
from components.core.errors import ConfigError


def mapping(text: str, what: str, source: str) -> dict[str, Any]:
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(source, [f"{what}: not JSON or YAML: {exc}"]) from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(source, [f"{what}: expected a mapping, found {type(value).__name__}"])
    return value


def backtest_config(args: argparse.Namespace, source: str) -> BacktestConfig:
    settings: dict[str, Any] = {}
    if args.config is not None:
        try:
            settings = mapping(args.config.read_text(), str(args.config), source)
        except OSError as exc:
            raise ConfigError(str(args.config), [f"(file): cannot read: {exc.strerror}"]) from exc
    for name in BacktestConfig.model_fields:
        value = getattr(args, f"setting_{name}", None)
        if value is not None:
            settings[name] = value
    try:
        return BacktestConfig.model_validate(settings)
    except pydantic.ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (was {e.get('input')!r})"
            for e in exc.errors()
        ]
        raise ConfigError(source, problems) from exc
