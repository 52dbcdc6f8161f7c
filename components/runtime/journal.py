"""Append-only journals: the crash-safe logs that components rebuild their state from.

One record per line: the CRC32 of the body in 8 hex digits, a space, the body (JSON), a newline.

    1c291ca3 {"record":"fill_applied","fill":{...},"ts_logged_ns":1732600000000000000}

`append` writes and fsyncs one record before it returns, so a caller acts on an event only once
it is on disk. A crash can tear only the last line: reading skips it with a warning and counts
it, and `Journal.open` cuts it off before appending. A bad line anywhere else means the file was
damaged after it was written: `CorruptLogError` names the line, since replaying around it would
rebuild the wrong state.

A journal's records are msgspec structs derived from `Record`, tagged by their `record` field and
encoded as JSON (Decimal as strings). What they hold is the owner's business (the risk manager's
state log, the execution engine's order log): each subclasses `Journal` with its record union.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import msgspec

from components.core.errors import CorruptLogError

log = logging.getLogger(__name__)


class Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="record"):
    """Base of every journal record: tagged by its `record` field, stamped when logged."""

    ts_logged_ns: int


R = TypeVar("R", bound=Record)
_encoder = msgspec.json.Encoder()


def encode(record: Record) -> bytes:
    """The journal line of `record`."""
    return frame(_encoder.encode(record))


def _decoder(record_type: Any) -> Callable[[bytes], Any]:
    decoder = msgspec.json.Decoder(record_type)

    def decode(body: bytes) -> Any:
        try:
            return decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ValueError(f"bad record: {exc}") from exc

    return decode


def frame(body: bytes) -> bytes:
    """One journal line for `body` (which must not contain a newline: compact JSON has none)."""
    return b"%08x %s\n" % (zlib.crc32(body), body)


def unframe(line: bytes) -> bytes:
    """The body of one line (without its newline); `ValueError` saying what is wrong with it."""
    if len(line) < 10 or line[8:9] != b" ":
        raise ValueError("not '<crc32> <body>'")
    body = line[9:]
    try:
        stored = int(line[:8], 16)
    except ValueError:
        raise ValueError(f"bad CRC field {line[:8]!r}") from None
    computed = zlib.crc32(body)
    if stored != computed:
        raise ValueError(f"CRC mismatch: stored {stored:08x}, computed {computed:08x}")
    return body


@dataclasses.dataclass
class Replay(Generic[R]):
    """What a journal holds: its records in order, and how much of its tail was torn."""

    records: list[R]
    torn_lines: int  # 0 or 1: a last line cut short by a crash, skipped
    valid_bytes: int  # length of the file up to the end of the last good line

    def __iter__(self) -> Iterator[R]:
        return iter(self.records)


def read(path: Path, record_type: Any) -> Replay[Any]:
    """Every record of the journal at `path` (a missing file has none); `record_type` is the
    union of the records it may hold."""
    decode = _decoder(record_type)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay([], 0, 0)
    lines = data.split(b"\n")
    fragment = lines.pop()  # after the last newline: empty unless the last write was torn
    records: list[Any] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(decode(unframe(line)))
        except ValueError as exc:
            if number == len(lines) and not fragment:
                # A complete but damaged last line: a torn write, never acted on.
                log.warning("Skipped the torn last line %d of %s: %s.", number, path, exc)
                return Replay(records, 1, offset)
            raise CorruptLogError(f"journal {path}: line {number} is corrupt: {exc}") from exc
        offset += len(line) + 1
    if fragment:
        log.warning(
            "Skipped the torn last line %d of %s (%d bytes, no newline).",
            len(lines) + 1,
            path,
            len(fragment),
        )
    return Replay(records, int(bool(fragment)), offset)


class Journal(Generic[R]):
    """Appends records to one file, each fsynced before `append` returns.

    A subclass names the records it holds: `record_type: ClassVar = OrderApproved | FillApplied`.
    """

    record_type: ClassVar[Any]

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab", buffering=0)

    @classmethod
    def read(cls, path: Path) -> Replay[R]:
        """Every record of the journal at `path` (a missing file has none)."""
        return read(path, cls.record_type)

    @classmethod
    def open(cls, path: Path) -> tuple[Self, Replay[R]]:
        """Read the journal at `path`, cut off a torn tail, and open it for appending."""
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        replay = cls.read(path)
        if replay.torn_lines:
            with path.open("r+b") as file:
                file.truncate(replay.valid_bytes)
                os.fsync(file.fileno())
        journal = cls(path)
        if not existed:
            # The new file's directory entry must survive a crash too.
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return journal, replay

    def append(self, record: R) -> None:
        """Write and fsync one record; on failure cut back what was written, then raise."""
        # Blocking, but one small write + fsync (~0.1 ms here); acceptable on the event loop.
        size = self._file.tell()
        try:
            self._file.write(encode(record))
            os.fsync(self._file.fileno())
        except OSError:
            # A half-written line followed by later records would read as corruption.
            self._file.truncate(size)
            raise

    def close(self) -> None:
        self._file.close()
