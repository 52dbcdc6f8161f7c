"""A strategy that asks an ONNX model: the bar's feature vector in, a score out; buy when the
score rises above `buy_above`, sell when it falls below `sell_below`.

The model takes one float32 input of shape `[1, n]` (or `[batch, n]`, batch 1 is sent), `n` the
number of `features` (named as in `features`), and its first output's first element is the
score. A model that cannot be loaded, or whose input does not fit the features, is a config error
when the strategy is built, not a crash on the first bar. One signal per crossing, as the other
built-in strategies: a score that stays above `buy_above` signals once.

onnxruntime is the `onnx` extra (`pip install 'tradingsystem[onnx]'`): only this strategy needs
it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from components.core.errors import ConfigError
from components.core.events import Bar, Side
from components.strategy.base import Intent, Strategy
from components.strategy.features import FeatureSet


class OnnxParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_path: str = Field(description="The .onnx file (relative to the working directory).")
    features: list[str] = Field(
        min_length=1, description='Features in the model\'s input order, e.g. ["rsi:14"].'
    )
    buy_above: float = Field(
        0.5, allow_inf_nan=False, description="Buy when the score rises above."
    )
    sell_below: float = Field(
        -0.5, allow_inf_nan=False, description="Sell when the score falls below."
    )

    @pydantic.field_validator("features")
    @classmethod
    def _features_known(cls, features: list[str]) -> list[str]:
        FeatureSet.check(features)
        return features

    @pydantic.model_validator(mode="after")
    def _thresholds_ordered(self) -> OnnxParams:
        if self.sell_below > self.buy_above:
            raise ValueError(
                f"sell_below ({self.sell_below}) must not exceed buy_above ({self.buy_above})"
            )
        return self


def _session(path: Path, width: int) -> tuple[Any, str]:
    problem = "strategy.params.model_path"
    try:
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(
            "strategy", [f"{problem}: onnxruntime is not installed (the 'onnx' extra)"]
        ) from exc
    try:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one bar at a time: threads only add latency
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime raises its own types for a missing or bad file
        raise ConfigError("strategy", [f"{problem}: cannot load {str(path)!r}: {exc}"]) from exc
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ConfigError(
            "strategy", [f"{problem}: the model has {len(inputs)} inputs; one is needed"]
        )
    shape = inputs[0].shape
    # A dimension that is not an int is symbolic ("batch", None): it takes any size.
    fits = len(shape) == 2 and (shape[1] == width or not isinstance(shape[1], int))
    if inputs[0].type != "tensor(float)" or not fits:
        raise ConfigError(
            "strategy",
            [
                f"{problem}: the model's input is {inputs[0].type} {shape}; "
                f"the {width} feature(s) need tensor(float) [1, {width}]"
            ],
        )
    return session, inputs[0].name


class OnnxStrategy(Strategy):
    name = "onnx"
    Params = OnnxParams

    def __init__(self, params: pydantic.BaseModel) -> None:
        assert isinstance(params, OnnxParams)
        super().__init__(params)
        self.features = params.features
        self.buy_above = params.buy_above
        self.sell_below = params.sell_below
        self._session, self._input = _session(Path(params.model_path), len(params.features))
        import numpy  # installed with onnxruntime

        self._array = numpy.array
        self._float32 = numpy.float32
        self._sets: dict[str, FeatureSet] = {}
        self._side: dict[str, int] = {}
        self.last_score: float | None = None

    def score(self, vector: list[float]) -> float:
        batch = self._array([vector], dtype=self._float32)
        (first, *_) = self._session.run(None, {self._input: batch})
        return float(first.reshape(-1)[0])

    def on_bar(self, bar: Bar) -> Intent | None:
        features = self._sets.get(bar.symbol)
        if features is None:
            features = self._sets[bar.symbol] = FeatureSet(self.features)
        vector = features.update(bar)
        if vector is None:
            return None
        self.last_score = score = self.score(vector)
        side = 1 if score > self.buy_above else -1 if score < self.sell_below else 0
        previous = self._side.get(bar.symbol, 0)
        self._side[bar.symbol] = side
        if side == 0 or side == previous:
            return None
        if side > 0:
            return Intent(bar.symbol, Side.BUY, f"score {score:.4f} above {self.buy_above:g}")
        return Intent(bar.symbol, Side.SELL, f"score {score:.4f} below {self.sell_below:g}")
