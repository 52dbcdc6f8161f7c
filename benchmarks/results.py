"""What a benchmark reports: one `Result` per row of the table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Result:
    """One measurement against its target.

    `meets` is None for a row that has no target of its own (a sanity check or a figure shown for
    context). `values` holds the raw numbers behind `measured`, for `--json`.
    """

    name: str
    target: str
    measured: str
    meets: bool | None
    note: str = ""
    values: dict[str, float | int] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        if self.meets is None:
            return "-"
        return "meets" if self.meets else "misses"

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "verdict": self.verdict}
