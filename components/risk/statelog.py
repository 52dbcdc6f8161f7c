"""The risk manager's state log: an append-only file that its state is rebuilt from on restart.

Each record is written and fsynced before the event it records is acted on: an approval before
the reply and the `Order` leave, a fill before it changes the position book. So whatever the
risk manager ever said or did is on disk, and replaying the log gives back the same positions,
cash and open approvals.

One record per line: the CRC32 of the body in 8 hex digits, a space, then the body, a JSON
object (Decimal as strings) tagged by its `record` field:

    1c291ca3 {"record":"fill_applied","fill":{...},"ts_logged_ns":1732600000000000000}

A crash can tear the last line only; on reading it is skipped with a warning and counted, and
`StateLog.open` cuts it off before appending. A bad line anywhere else means the file was damaged
after it was written: `CorruptLogError`, naming the line, since replaying around it would give
wrong positions.

`load_book(data_dir, initial_cash)` is the offline reader (`tradingsystem run`'s summary).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path

import msgspec

from components.core.errors import TradingSystemError
from components.core.events import Fill, Order, OrderStatus
from components.risk.positions import PositionBook

log = logging.getLogger(__name__)

STATE_LOG_NAME = "state.log"
ZERO = Decimal(0)


class CorruptLogError(TradingSystemError, ValueError):
    """A line other than the last one of a state log does not decode or fails its CRC."""


class _Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="record"):
    ts_logged_ns: int


class LogOpened(_Record, tag="log_opened"):
    """The first record: the account's starting cash, which later config changes do not alter."""

    system: str
    initial_cash: Decimal


class OrderApproved(_Record, tag="order_approved"):
    order: Order


class OrderAcknowledged(_Record, tag="order_acknowledged"):
    client_order_id: str


class OrderClosed(_Record, tag="order_closed"):
    """The order is over (filled, rejected, canceled, expired): it holds no more exposure."""

    client_order_id: str
    status: OrderStatus
    reason: str = ""


class FillApplied(_Record, tag="fill_applied"):
    fill: Fill


Record = LogOpened | OrderApproved | OrderAcknowledged | OrderClosed | FillApplied

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


def encode_line(record: Record) -> bytes:
    body = _encoder.encode(record)
    return b"%08x %s\n" % (zlib.crc32(body), body)


def decode_line(line: bytes) -> Record:
    """One line without its newline; `ValueError` saying what is wrong with it."""
    if len(line) < 10 or line[8:9] != b" ":
        raise ValueError("not '<crc32> <json>'")
    body = line[9:]
    try:
        stored = int(line[:8], 16)
    except ValueError:
        raise ValueError(f"bad CRC field {line[:8]!r}") from None
    computed = zlib.crc32(body)
    if stored != computed:
        raise ValueError(f"CRC mismatch: stored {stored:08x}, computed {computed:08x}")
    try:
        return _decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise ValueError(f"bad record: {exc}") from exc


@dataclasses.dataclass
class Replay:
    """What a state log holds: its records in order, and how much of its tail was torn."""

    records: list[Record]
    torn_lines: int  # 0 or 1: a last line cut short by a crash, skipped
    valid_bytes: int  # length of the file up to the end of the last good line

    def __iter__(self) -> Iterator[Record]:
        return iter(self.records)


def read(path: Path) -> Replay:
    """Read every record of the log at `path` (missing file: no records)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Replay([], 0, 0)
    lines = data.split(b"\n")
    fragment = lines.pop()  # after the last newline: empty unless the last write was torn
    records: list[Record] = []
    torn, offset = 0, 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(decode_line(line))
        except ValueError as exc:
            if number == len(lines) and not fragment:
                torn = 1  # a complete but damaged last line: a torn write, not acted on
                log.warning("Skipped the torn last line %d of %s: %s.", number, path, exc)
                break
            raise CorruptLogError(f"state log {path}: line {number} is corrupt: {exc}") from exc
        offset += len(line) + 1
    else:
        if fragment:
            torn = 1
            log.warning(
                "Skipped the torn last line %d of %s (%d bytes, no newline).",
                len(lines) + 1,
                path,
                len(fragment),
            )
    return Replay(records, torn, offset)


class StateLog:
    """Appends records to the log, each one fsynced before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab", buffering=0)

    @classmethod
    def open(cls, path: Path) -> tuple[StateLog, Replay]:
        """Read the log at `path`, cut off a torn tail, and open it for appending."""
        path.parent.mkdir(parents=True, exist_ok=True)
        existed = path.exists()
        replay = read(path)
        if replay.torn_lines:
            with path.open("r+b") as file:
                file.truncate(replay.valid_bytes)
                os.fsync(file.fileno())
        statelog = cls(path)
        if not existed:
            # The new file's directory entry must survive a crash too.
            directory = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        return statelog, replay

    def append(self, record: Record) -> None:
        """Write and fsync one record; on failure cut back what was written, then raise."""
        # Blocking, but a single small write + fsync; acceptable inline on the event loop for now.
        size = self._file.tell()
        try:
            self._file.write(encode_line(record))
            os.fsync(self._file.fileno())
        except OSError:
            # A half-written line followed by later records would read as corruption.
            self._file.truncate(size)
            raise

    def close(self) -> None:
        self._file.close()


@dataclasses.dataclass
class Approval:
    """An order approved by the risk manager whose exposure counts until it fills or closes."""

    order: Order
    ts_approved_ns: int
    acknowledged: bool = False
    filled_quantity: Decimal = ZERO

    @property
    def remaining(self) -> Decimal:
        return max(self.order.quantity - self.filled_quantity, ZERO)


class LoggedState:
    """The state the log records, changed only by `apply`, live and on replay alike."""

    def __init__(self, initial_cash: Decimal) -> None:
        self.book = PositionBook(initial_cash)
        self.approvals: dict[str, Approval] = {}  # open ones, by client order id
        self.signals: dict[str, str] = {}  # signal id -> client order id, of every approval
        self.fill_ids: set[str] = set()
        self.opened = False

    def apply(self, record: Record) -> None:
        match record:
            case LogOpened(initial_cash=cash):
                if not self.opened:
                    self.book = PositionBook(cash)
                self.opened = True
            case OrderApproved(order=order):
                self.approvals[order.client_order_id] = Approval(order, record.ts_logged_ns)
                self.signals[order.signal_id] = order.client_order_id
            case OrderAcknowledged(client_order_id=client_order_id):
                approval = self.approvals.get(client_order_id)
                if approval is not None:
                    approval.acknowledged = True
            case OrderClosed(client_order_id=client_order_id):
                self.approvals.pop(client_order_id, None)
            case FillApplied(fill=fill):
                self.book.apply_fill(fill)
                self.fill_ids.add(fill.fill_id)
                approval = self.approvals.get(fill.client_order_id)
                if approval is not None:
                    approval.acknowledged = True  # a fill proves execution has the order
                    approval.filled_quantity += fill.quantity
                    if approval.remaining == 0:
                        del self.approvals[fill.client_order_id]


def replay(records: Iterable[Record], initial_cash: Decimal) -> LoggedState:
    state = LoggedState(initial_cash)
    for record in records:
        state.apply(record)
    return state


def load_book(data_dir: Path, initial_cash: Decimal) -> PositionBook:
    """The position book held in the risk manager's state log under `data_dir`.

    `data_dir` is the risk manager's own data directory (its `TS_DATA_DIR`, e.g. `var/risk`);
    `initial_cash` applies only when the log does not record one (no log yet: an empty book).
    Raises `CorruptLogError` when a line before the last is damaged.
    """
    return replay(read(Path(data_dir) / STATE_LOG_NAME), initial_cash).book
