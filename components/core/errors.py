"""The errors of TradingSystem, each subclassing the builtin it means.

    TradingSystemError
    ├── ConfigError(ValueError)        a config or manifest is invalid; names every bad field
    ├── CodecError(ValueError)         a wire message cannot be decoded
    ├── InvalidPriceError(ValueError)  a price or quantity is NaN, infinite, zero or negative
    ├── FillRejected(ValueError)       a fill the position book cannot take (nothing changed)
    ├── CorruptLogError(ValueError)    a journal is damaged or has a gap in its records
    │   └── CorruptLineError           a complete line fails its CRC or its decoding: where
    ├── DataError(ValueError)          a market-data file is unreadable or has a bad row
    ├── RequestError(ValueError)       an HTTP request's body is not what its endpoint takes (400)
    ├── BusError(ConnectionError)      the broker cannot be reached or a request timed out
    └── KubeApiError(ConnectionError)  the Kubernetes API refused or failed a request

Foreign errors (pydantic, msgspec, zmq) are translated once at the boundary with `raise … from exc`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence


class TradingSystemError(Exception):
    """Base of every error raised on purpose by TradingSystem."""


class ConfigError(TradingSystemError, ValueError):
    """A config file or manifest is invalid. `problems` holds one `path: message` per field."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        if len(self.problems) == 1:
            super().__init__(f"invalid config {source}: {self.problems[0]}")
        else:
            lines = "".join(f"\n  {problem}" for problem in self.problems)
            super().__init__(f"invalid config {source}: {len(self.problems)} errors{lines}")


class CodecError(TradingSystemError, ValueError):
    """A message on the wire is malformed: wrong framing, wrong schema or unknown payload."""


class InvalidPriceError(TradingSystemError, ValueError):
    """A price, size or amount is not a finite positive number."""


class FillRejected(TradingSystemError, ValueError):
    """A fill the position book refuses as a whole, before any of its effect is applied:
    malformed, outside the documented bounds, or arithmetic that would not be exact."""

    def __init__(self, fill_id: str, reason: str) -> None:
        self.fill_id = fill_id
        self.reason = reason
        super().__init__(f"fill {fill_id}: {reason}")


class CorruptLogError(TradingSystemError, ValueError):
    """A journal (state log, order log) cannot be replayed: a damaged line, or records missing."""


class CorruptLineError(CorruptLogError):
    """A complete line of a journal (its newline written) fails its CRC or cannot be decoded.

    Every line was fsynced before it was acted on, so it may hold a confirmed fill: it is never
    skipped. `path`, `line` (from 1) and `offset` (of its first byte) say where it is;
    `tradingsystem state DIR --repair` moves it and everything after it aside.
    """

    def __init__(self, path: os.PathLike[str], line: int, offset: int, problem: str) -> None:
        self.path, self.line, self.offset, self.problem = path, line, offset, problem
        super().__init__(f"journal {path}: line {line} is corrupt: {problem} (at byte {offset})")


class DataError(TradingSystemError, ValueError):
    """A market-data file (a backtest's input) cannot be read, or a row of it is invalid."""


class RequestError(TradingSystemError, ValueError):
    """An HTTP request's body is not UTF-8 JSON, or not what its endpoint takes: answered 400."""


class BusError(TradingSystemError, ConnectionError):
    """The broker is unreachable, or a request through it got no reply in time."""


class KubeApiError(TradingSystemError, ConnectionError):
    """The Kubernetes API refused or failed a request; `status`: its HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str, message: str, what: str) -> None:
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"while {what}: HTTP {status} {reason}: {message}")
