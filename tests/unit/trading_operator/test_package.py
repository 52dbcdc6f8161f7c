"""The operator's package is importable as `trading_operator` without shadowing the standard
library's `operator`, even from the project's root where the `operator/` folder is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_stdlib_operator_and_trading_operator_import_side_by_side() -> None:
    code = (
        "import operator, trading_operator.handlers; "
        "assert operator.add(1, 2) == 3; print(trading_operator.__name__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "trading_operator"
