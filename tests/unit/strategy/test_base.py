"""Loading a strategy from `strategy.class_path` and `strategy.params`: every problem is a
`ConfigError` naming the field."""

from __future__ import annotations

from typing import Any

import pytest

from components.core.config import StrategyConfig
from components.core.errors import ConfigError
from components.strategy.base import load_strategy
from components.strategy.sma_cross import SmaCross

SMA = "components.strategy.sma_cross:SmaCross"


def test_load_strategy_when_defaults_then_sma_cross_with_params() -> None:
    config = StrategyConfig()
    strategy = load_strategy(config.class_path, config.params)
    assert isinstance(strategy, SmaCross)
    assert (strategy.fast, strategy.slow, strategy.name) == (3, 8, "sma_cross")


@pytest.mark.parametrize(
    ("params", "problems"),
    [
        (
            {"fast": 0, "slow": 8},
            ["strategy.params.fast: Input should be greater than or equal to 1 (was 0)"],
        ),
        ({"fast": 5, "slow": 5}, ["strategy.params.slow: must be greater than fast (5) (was 5)"]),
        ({"fast": 9, "slow": 3}, ["strategy.params.slow: must be greater than fast (9) (was 3)"]),
        (
            {"fast": "three", "slow": 8},
            [
                "strategy.params.fast: Input should be a valid integer, unable to parse string as "
                "an integer (was 'three')"
            ],
        ),
        ({"fsat": 3, "slow": 8}, ["strategy.params.fsat: Extra inputs are not permitted"]),
    ],
)
def test_load_strategy_when_params_invalid_then_config_error_names_field(
    params: dict[str, Any], problems: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_strategy(SMA, params)
    assert caught.value.problems == problems
    assert caught.value.source == "strategy"


def test_load_strategy_when_module_missing_then_config_error_names_class_path() -> None:
    with pytest.raises(ConfigError) as caught:
        load_strategy("components.strategy.nope:Nope", {})
    (problem,) = caught.value.problems
    assert problem.startswith(
        "strategy.class_path: cannot import module 'components.strategy.nope'"
    )


@pytest.mark.parametrize(
    ("class_path", "found"),
    [
        ("components.strategy.sma_cross:Missing", "nothing"),
        ("components.strategy.sma_cross:SmaCrossParams", "<class "),
    ],
)
def test_load_strategy_when_not_a_strategy_then_config_error(class_path: str, found: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_strategy(class_path, {})
    (problem,) = caught.value.problems
    assert problem.startswith(f"strategy.class_path: {class_path!r} must name a Strategy subclass")
    assert f"(found {found}" in problem


class _NoTime(SmaCross):
    timer_interval_s = 0.0


def test_load_strategy_when_timer_interval_not_positive_then_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        load_strategy(f"{__name__}:_NoTime", {})
    assert caught.value.problems == [
        f"strategy.class_path: {__name__}:_NoTime.timer_interval_s must be > 0 s (was 0.0)"
    ]
