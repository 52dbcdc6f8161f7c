"""The built-in strategies and the example one, each on a series whose signals are known: mean
reversion (Bollinger / z-score), breakout momentum, the ONNX model strategy (with a model built
here with onnx's helper API), the feature vector it reads, and the user strategy in
`examples/strategies/` loaded by its file path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from components.core.errors import ConfigError
from components.core.events import Bar, Side
from components.strategy.base import Intent, Strategy, load_strategy
from components.strategy.features import FeatureSet

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = ROOT / "examples" / "strategies" / "rsi_reversion.py"


def bar(close: str, high: str | None = None, low: str | None = None, symbol: str = "AAPL") -> Bar:
    price = Decimal(close)
    return Bar(
        symbol=symbol,
        timeframe="60s",
        open=price,
        high=Decimal(high) if high else price,
        low=Decimal(low) if low else price,
        close=price,
        volume=Decimal(10),
        vwap=price,
        trade_count=1,
        ts_open_ns=0,
        ts_close_ns=1,
    )


def feed(strategy: Strategy, bars: list[Bar]) -> list[tuple[int, Side]]:
    """(index, side) of every intent."""
    out = []
    for i, b in enumerate(bars):
        intent = strategy.on_bar(b)
        if intent is not None:
            assert isinstance(intent, Intent) and intent.symbol == b.symbol and intent.reason
            out.append((i, intent.side))
    return out


def test_mean_reversion_when_close_leaves_the_bands_then_trades_against_it_once() -> None:
    strategy = load_strategy(
        "components.strategy.mean_reversion:MeanReversion", {"period": 5, "width": 1.5}
    )
    closes = ["10", "10.1", "9.9", "10", "10.1", "8", "7.5", "10", "10", "12", "12.5", "10"]
    # Bar 5 (8) drops below the lower band (z -1.99); bar 6 stays below: no second buy.
    # Bar 9 (12) rises above the upper band (z 1.86).
    assert feed(strategy, [bar(c) for c in closes]) == [(5, Side.BUY), (9, Side.SELL)]


def test_mean_reversion_when_symbols_interleave_then_each_has_its_window() -> None:
    strategy = load_strategy("components.strategy.mean_reversion:MeanReversion", {"period": 3})
    bars = []
    for close in ["10", "10", "10", "10", "10"]:
        bars += [bar(close, symbol="AAA"), bar("20", symbol="BBB")]
    assert feed(strategy, bars) == []  # flat windows: z = 0 for both


def test_breakout_when_close_beyond_channel_then_signals_once_per_direction() -> None:
    strategy = load_strategy("components.strategy.breakout:Breakout", {"period": 3})
    bars = [
        bar("10", "10.5", "9.5"),
        bar("10", "10.4", "9.6"),
        bar("10", "10.3", "9.7"),
        bar("10.6", "10.7", "10.1"),  # 3: above 10.5, the highest high of bars 0-2
        bar("10.8", "10.9", "10.5"),  # 4: higher again, same direction: nothing
        bar("10.5", "10.6", "10.4"),
        bar("10.0", "10.1", "9.9"),  # 6: below 10.1, the lowest low of bars 3-5
    ]
    assert feed(strategy, bars) == [(3, Side.BUY), (6, Side.SELL)]


def test_breakout_when_close_equals_the_channel_high_then_no_signal() -> None:
    strategy = load_strategy("components.strategy.breakout:Breakout", {"period": 2})
    bars = [bar("10", "11", "9"), bar("10", "11", "9"), bar("11", "11", "10")]
    assert feed(strategy, bars) == []


def _linear_model(path: Path, weights: list[float], bias: float) -> None:
    """score = features . weights + bias, as an ONNX graph (MatMul + Add)."""
    width = len(weights)
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["features", "weights"], ["product"]),
            helper.make_node("Add", ["product", "bias"], ["score"]),
        ],
        "linear",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info("score", TensorProto.FLOAT, ["batch", 1])],
        initializer=[
            helper.make_tensor("weights", TensorProto.FLOAT, [width, 1], weights),
            helper.make_tensor("bias", TensorProto.FLOAT, [1], [bias]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime this project accepts
    onnx.checker.check_model(model)
    onnx.save(model, path)


def test_onnx_strategy_when_model_scores_returns_then_trades_on_threshold_crossings(
    tmp_path: Path,
) -> None:
    model = tmp_path / "linear.onnx"
    _linear_model(model, [10.0], 0.0)  # score = 10 x the one-bar return
    strategy = load_strategy(
        "components.strategy.onnx_model:OnnxStrategy",
        {"model_path": str(model), "features": ["return:1"], "buy_above": 0.5},
    )
    closes = ["100", "101", "107", "110", "110", "100", "101"]
    # returns: -, 1 %, 5.9 %, 2.8 %, 0, -9.1 %, 1 %  -> scores 0.1, 0.59, 0.28, 0, -0.91, 0.1
    assert feed(strategy, [bar(c) for c in closes]) == [(2, Side.BUY), (5, Side.SELL)]
    assert strategy.last_score == pytest.approx(0.1, rel=1e-5)  # type: ignore[attr-defined]


def test_onnx_strategy_when_model_input_does_not_fit_features_then_config_error(
    tmp_path: Path,
) -> None:
    model = tmp_path / "two.onnx"
    _linear_model(model, [1.0, 2.0], 0.0)
    with pytest.raises(ConfigError, match=r"model_path: the model's input is tensor\(float\)"):
        load_strategy(
            "components.strategy.onnx_model:OnnxStrategy",
            {"model_path": str(model), "features": ["return:1"]},
        )


def test_onnx_strategy_when_model_missing_or_features_unknown_then_config_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match="model_path: cannot load"):
        load_strategy(
            "components.strategy.onnx_model:OnnxStrategy",
            {"model_path": str(tmp_path / "nope.onnx"), "features": ["rsi:14"]},
        )
    with pytest.raises(ConfigError) as caught:
        load_strategy(
            "components.strategy.onnx_model:OnnxStrategy",
            {"model_path": "x.onnx", "features": ["rsi:14", "magic:3"]},
        )
    assert caught.value.problems == [
        "strategy.params.features: 'magic:3': unknown feature 'magic' (known: return, sma, ema, "
        "wma, vwap, zscore, rsi, volatility, atr, macd, bollinger)"
    ]


def test_feature_set_when_warm_then_vector_in_spec_order() -> None:
    features = FeatureSet(["return:2", "sma:2", "rsi:2", "bollinger:2:1.0"])
    vectors = [features.update(bar(c)) for c in ["100", "102", "101"]]
    assert vectors[:2] == [None, None]
    ret, sma, rsi, percent_b = vectors[2]  # type: ignore[misc]
    assert ret == pytest.approx(0.01)
    assert sma == pytest.approx(101 / 101.5 - 1)
    assert rsi == pytest.approx(2 / 3)  # gains 2, losses 1 over two changes
    assert percent_b == pytest.approx(0.0)  # 101 is the lower band of (102, 101) at 1 sd


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rsi", "rsi takes 1 integer argument"),
        ("macd:12:26", "macd takes 3 integer argument"),
        ("sma:0", "period must be an integer >= 1"),
        ("ema:x", "arguments must be numbers"),
    ],
)
def test_feature_set_when_spec_invalid_then_value_error_names_it(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FeatureSet([spec])


def test_example_strategy_when_loaded_by_file_path_then_trades_on_rsi_zones() -> None:
    strategy = load_strategy(
        f"{EXAMPLE}:RsiReversion", {"period": 2, "oversold": 20, "overbought": 80}
    )
    assert strategy.name == "rsi_reversion"
    closes = ["10", "11", "12", "11", "10", "9", "9.5", "12"]
    # RSI(2): 100 at bar 2; then 50, 25, 12.5 (bar 5), 41.7, 86.5 (bar 7).
    signals = feed(strategy, [bar(c) for c in closes])
    assert signals == [(2, Side.SELL), (5, Side.BUY), (7, Side.SELL)]
    # Loading it again gives a new instance of the same class (imported once per process).
    again = load_strategy(f"{EXAMPLE}:RsiReversion", {})
    assert type(again) is type(strategy) and again is not strategy


def test_load_strategy_when_file_missing_then_config_error_names_class_path(
    tmp_path: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"strategy\.class_path: cannot import module"):
        load_strategy(f"{tmp_path / 'missing.py'}:Nope", {})
