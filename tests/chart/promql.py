"""The metric names a PromQL expression reads, without a PromQL parser: drop what cannot be a
metric (strings, label matchers, ranges, grouping clauses), then every identifier that is not a
number's exponent, not followed by `(` (a function) and not a keyword is a metric name."""

from __future__ import annotations

import re

KEYWORDS = {
    "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "offset", "inf", "nan",
}  # fmt: skip
_DROP = [
    re.compile(r'"(?:[^"\\]|\\.)*"'),  # strings
    re.compile(r"\{[^}]*\}"),  # label matchers
    re.compile(r"\[[^\]]*\]"),  # ranges and subqueries
    re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"),
]
_IDENTIFIER = re.compile(r"(?<![\w.:$])[A-Za-z_:][\w:]*")
# Grafana's templating: label_values(metric, label) reads the metric; the label is no metric.
_LABEL_VALUES = re.compile(r"label_values\(\s*([A-Za-z_:][\w:]*)\s*,[^)]*\)")


def metric_names(expr: str) -> set[str]:
    expr = _LABEL_VALUES.sub(r" \1 ", expr)
    for pattern in _DROP:
        expr = pattern.sub(" ", expr)
    names = set()
    for match in _IDENTIFIER.finditer(expr):
        if expr[match.end() :].lstrip().startswith("("):
            continue  # a function or aggregation
        if match.group().lower() not in KEYWORDS:
            names.add(match.group())
    return names
