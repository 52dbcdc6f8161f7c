"""The Kubernetes CEL library functions the CRD's rules call, for cel-python (which ships only
the CEL standard): `quantity()` with `compareTo`, `isLessThan`, `isGreaterThan`, as in
k8s.io/apiserver/pkg/cel/library/quantity.go. A quantity is an exact Decimal here, so that
`1Gi` equals `1024Mi` and never rounds."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import celpy
from celpy import celtypes

_SUFFIXES = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(["Ki", "Mi", "Gi", "Ti", "Pi", "Ei"])},
    **{s: Decimal(10) ** e for s, e in [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3)]},
    **{s: Decimal(10) ** e for s, e in [("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)]},
}
_QUANTITY = re.compile(
    r"^([+-]?[0-9]*\.?[0-9]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$"
)


class Quantity:
    """A parsed Kubernetes quantity (`resource.Quantity`), compared exactly."""

    def __init__(self, text: str) -> None:
        match = _QUANTITY.fullmatch(text)
        if match is None:
            raise ValueError(f"quantities must match the regular expression, got {text!r}")
        number, exponent, suffix = match.groups()
        self.value = Decimal(number + (exponent or "")) * _SUFFIXES[suffix or ""]

    def compare(self, other: Quantity) -> int:
        return (self.value > other.value) - (self.value < other.value)


def _quantity(text: Any) -> Any:
    try:
        return Quantity(str(text))
    except ValueError as exc:
        return celpy.CELEvalError(str(exc))


def _compare_to(left: Quantity, right: Quantity) -> celtypes.IntType:
    return celtypes.IntType(left.compare(right))


FUNCTIONS: dict[str, Any] = {
    "quantity": _quantity,
    "compareTo": _compare_to,
    "isLessThan": lambda left, right: celtypes.BoolType(left.compare(right) < 0),
    "isGreaterThan": lambda left, right: celtypes.BoolType(left.compare(right) > 0),
}
