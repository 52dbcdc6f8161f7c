"""Append-only journals: the crash-safe logs that components rebuild their state from.

One record per line: the CRC32 of the body in 8 hex digits, a space, the body (JSON), a newline.

    1c291ca3 {"record":"fill_applied","fill":{...},"ts_logged_ns":1732600000000000000}

`append` writes and fsyncs one record before it returns, so a caller acts on an event only once
it is on disk. A crash can therefore tear only the last write, and a torn write has no newline:
reading drops such a final fragment with a warning, and `Journal.open` cuts it off (counted in
`journal_torn_lines_cut_total`) so that the next record starts on a clean line. A *complete* line
that fails its CRC or its decoding, wherever it is (the last one too), was acknowledged once:
it may hold a confirmed fill. It is never skipped: `CorruptLineError` names the file, the line and
its byte offset, and the owner refuses to start. `check` finds such damage without raising;
`repair` (behind `tradingsystem state DIR --repair`, an explicit step) moves the damaged line and
everything after it to a side file `<file>.damaged-<time>` and says what they held.

A journal's records are msgspec structs derived from `Record`, tagged by their `record` field and
encoded as JSON (Decimal as strings). What they hold is the owner's business (the risk manager's
state log, the execution engine's order log): each subclasses `Journal` with its record union.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar

import msgspec
import prometheus_client as prom

from components.core.errors import CorruptLineError

log = logging.getLogger(__name__)

# Process-wide, like the process collector: a journal is opened before a component's own
# metrics exist, and by owners that do not hold them. `serve()` exports it beside them.
METRICS = prom.CollectorRegistry(auto_describe=True)
_TORN_CUT = prom.Counter(
    "journal_torn_lines_cut",
    "Torn last lines (a write a crash interrupted, never acted on) cut off journals when opened.",
    ["journal"],
    registry=METRICS,
)


def torn_lines_cut(path: Path) -> float:
    """How many torn lines this process cut off journals named like `path`."""
    value = METRICS.get_sample_value("journal_torn_lines_cut_total", {"journal": path.name})
    return value or 0.0


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
    torn_lines: int  # 0 or 1: a final fragment without its newline (a torn write), skipped
    valid_bytes: int  # length of the file up to the end of the last good line

    def __iter__(self) -> Iterator[R]:
        return iter(self.records)


@dataclasses.dataclass(frozen=True)
class Damage:
    """The first complete line of a journal that fails its check."""

    path: Path
    line: int  # from 1
    offset: int  # of its first byte
    problem: str

    def error(self) -> CorruptLineError:
        return CorruptLineError(self.path, self.line, self.offset, self.problem)


def _scan(path: Path, record_type: Any) -> tuple[Replay[Any], Damage | None]:
    """The records of `path` up to its first damaged complete line, and that line (if any)."""
    decode = _decoder(record_type)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay([], 0, 0), None
    lines = data.split(b"\n")
    fragment = lines.pop()  # after the last newline: empty unless the last write was torn
    records: list[Any] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(decode(unframe(line)))
        except ValueError as exc:
            return Replay(records, 0, offset), Damage(path, number, offset, str(exc))
        offset += len(line) + 1
    if fragment:
        log.warning(
            "Skipped the torn last line %d of %s (%d bytes, no newline).",
            len(lines) + 1,
            path,
            len(fragment),
        )
    return Replay(records, int(bool(fragment)), offset), None


def read(path: Path, record_type: Any) -> Replay[Any]:
    """Every record of the journal at `path` (a missing file has none); `record_type` is the
    union of the records it may hold. Raises `CorruptLineError` at a damaged complete line."""
    replay, damage = _scan(path, record_type)
    if damage is not None:
        raise damage.error()
    return replay


def check(path: Path, record_type: Any) -> Damage | None:
    """The first damaged complete line of the journal at `path`, or None (torn tails are not
    damage: the owner cuts them off when it opens the journal)."""
    return _scan(path, record_type)[1]


# --- repair: an explicit step, never done by an owner on its own ------------------------------


def repair_hint(data_dir: Path) -> str:
    """What to tell whoever finds a damaged journal under `data_dir`."""
    return (
        f"See `tradingsystem state {data_dir}`; "
        f"`tradingsystem state {data_dir} --repair` moves the damaged lines aside."
    )


@dataclasses.dataclass(frozen=True)
class LostLine:
    """A line moved out of a journal by `repair`, and what can still be read of it."""

    line: int
    offset: int
    size: int  # bytes, its newline included
    problem: str | None  # None: it passes its check, but follows a damaged one
    body: str | None  # its JSON body when that still parses, CRC or not


@dataclasses.dataclass(frozen=True)
class Repaired:
    """What `repair` did: the journal cut back to `kept_bytes`, the rest in `side_file`."""

    path: Path
    side_file: Path
    kept_bytes: int
    lost: list[LostLine]

    @property
    def lost_bytes(self) -> int:
        return sum(lost.size for lost in self.lost)


def _describe(data: bytes, first_line: int, first_offset: int, record_type: Any) -> list[LostLine]:
    decode = _decoder(record_type)
    lost, offset = [], first_offset
    lines = data.split(b"\n")
    fragment = lines.pop()
    for number, line in enumerate([*lines, fragment] if fragment else lines, start=first_line):
        complete = number - first_line < len(lines)
        problem: str | None = None
        try:
            decode(unframe(line))
        except ValueError as exc:
            problem = str(exc)
        if not complete:
            problem = f"torn: no newline ({problem})" if problem else "torn: no newline"
        raw = line[9:] if line[8:9] == b" " else line
        text = raw.decode("utf-8", errors="replace")
        try:
            json.loads(text)
        except ValueError:
            text = None
        lost.append(LostLine(number, offset, len(line) + int(complete), problem, text))
        offset += len(line) + 1
    return lost


def _side_file(path: Path, stamp: str) -> Path:
    candidate, n = path.with_name(f"{path.name}.damaged-{stamp}"), 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return candidate


def move_aside(
    path: Path, offset: int, first_line: int, record_type: Any, *, stamp: str | None = None
) -> Repaired:
    """Move the bytes of `path` from `offset` (where line `first_line` starts) to a new side
    file next to it, then cut `path` back to `offset`. The side file is on disk (fsynced)
    before anything is cut, so a crash in between loses nothing."""
    stamp = stamp or time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    data = path.read_bytes()
    if not 0 <= offset <= len(data):
        raise ValueError(f"while repairing {path}: offset {offset} is past its end ({len(data)})")
    side_file = _side_file(path, stamp)
    with side_file.open("xb") as file:
        file.write(data[offset:])
        file.flush()
        os.fsync(file.fileno())
    with path.open("r+b") as file:
        file.truncate(offset)
        os.fsync(file.fileno())
    _fsync_directory(path.parent)
    lost = _describe(data[offset:], first_line, offset, record_type)
    return Repaired(path, side_file, offset, lost)


def repair(damage: Damage, record_type: Any, *, stamp: str | None = None) -> Repaired:
    """Move the damaged line of `damage` and everything after it aside (see `move_aside`)."""
    return move_aside(damage.path, damage.offset, damage.line, record_type, stamp=stamp)


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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
        """Read the journal at `path`, cut off a torn tail, and open it for appending.

        Raises `CorruptLineError` (and leaves the file as it is) at a damaged complete line."""
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        replay = cls.read(path)
        if replay.torn_lines:
            # Appending after the fragment would glue the next record to it: one damaged line.
            with path.open("r+b") as file:
                file.truncate(replay.valid_bytes)
                os.fsync(file.fileno())
            _TORN_CUT.labels(path.name).inc()
            log.warning(
                "Cut the torn last line %d off %s at byte %d (a write a crash interrupted).",
                len(replay.records) + 1,
                path,
                replay.valid_bytes,
            )
        journal = cls(path)
        if not existed:
            _fsync_directory(path.parent)  # the new file's directory entry must survive a crash
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
