"""The errors of TradingSystem, each subclassing the builtin it means.

    TradingSystemError
    ├── ConfigError(ValueError)        a config or manifest is invalid; names every bad field
    ├── CodecError(ValueError)         a wire message cannot be decoded
    ├── InvalidPriceError(ValueError)  a price or quantity is NaN, infinite, zero or negative
    ├── FillRejected(ValueError)       a fill the position book cannot take (nothing changed)
    ├── CorruptLogError(ValueError)    a journal line other than the last is damaged
    ├── DataError(ValueError)          a market-data file is unreadable or has a bad row
    ├── BusError(ConnectionError)      the broker cannot be reached or a request timed out
    └── KubeApiError(ConnectionError)  the Kubernetes API refused or failed a request

Foreign errors (pydantic, msgspec, zmq) are translated once at the boundary with `raise … from exc`.
"""

from __future__ import annotations

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
    """A line of a journal (state log, order log) other than the last fails its check."""


class DataError(TradingSystemError, ValueError):
    """A market-data file (a backtest's input) cannot be read, or a row of it is invalid."""


class BusError(TradingSystemError, ConnectionError):
    """The broker is unreachable, or a request through it got no reply in time."""


class KubeApiError(TradingSystemError, ConnectionError):
    """The Kubernetes API refused or failed a request; `status`: its HTTP status (0: no answer)."""

    def __init__(self, status: int, reason: str, message: str, what: str) -> None:
        self.status, self.reason, self.message = status, reason, message
        super().__init__(f"while {what}: HTTP {status} {reason}: {message}")
