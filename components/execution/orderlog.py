"""The execution engine's order log: every order before it reaches the venue, and what became of it.

It is what makes "never sent twice" hold across restarts: an order is appended (and fsynced)
before it is sent, and on restart every client order id in the log counts as already handled, so
a re-delivered `Order` is dropped. A crash between the append and the send loses that order
rather than risking a second copy; the risk manager then expires its approval.

Same line format as the risk manager's state log (kept separate: components do not import each
other): `<crc32 as 8 hex digits> <json>` per line. A torn last line is skipped and cut off; a bad
line before it is a `CorruptLogError` naming the line.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import zlib
from pathlib import Path

import msgspec

from components.core.errors import TradingSystemError
from components.core.events import Fill, Order, OrderStatus, OrderUpdate

log = logging.getLogger(__name__)

ORDER_LOG_NAME = "orders.log"
TERMINAL = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)


class CorruptLogError(TradingSystemError, ValueError):
    """A line other than the last one of the order log does not decode or fails its CRC."""


class _Record(msgspec.Struct, frozen=True, kw_only=True, tag_field="record"):
    ts_logged_ns: int


class OrderReceived(_Record, tag="order_received"):
    """Written before the order goes to the venue (or is refused): its id is now spent."""

    order: Order
    trace_id: str


class OrderUpdated(_Record, tag="order_updated"):
    update: OrderUpdate


class OrderFilled(_Record, tag="order_filled"):
    fill: Fill


Record = OrderReceived | OrderUpdated | OrderFilled

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(Record)


@dataclasses.dataclass
class Orders:
    """What the log says: every client order id handled, and those not yet terminal."""

    known: set[str] = dataclasses.field(default_factory=set)
    open: dict[str, Order] = dataclasses.field(default_factory=dict)
    torn_lines: int = 0

    def apply(self, record: Record) -> None:
        if isinstance(record, OrderReceived):
            self.known.add(record.order.client_order_id)
            self.open[record.order.client_order_id] = record.order
        elif isinstance(record, OrderUpdated):
            self.known.add(record.update.client_order_id)
            if record.update.status in TERMINAL:
                self.open.pop(record.update.client_order_id, None)


def _decode(line: bytes) -> Record:
    if len(line) < 10 or line[8:9] != b" " or f"{zlib.crc32(line[9:]):08x}".encode() != line[:8]:
        raise ValueError("bad framing or CRC mismatch")
    try:
        return _decoder.decode(line[9:])
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc


def read(path: Path) -> tuple[list[Record], int, int]:
    """(records, torn last lines skipped, bytes up to the end of the last good line)."""
    try:
        lines = path.read_bytes().split(b"\n")
    except FileNotFoundError:
        return [], 0, 0
    fragment = lines.pop()  # after the last newline: empty unless the last write was torn
    records: list[Record] = []
    offset = 0
    for number, line in enumerate(lines, start=1):
        try:
            records.append(_decode(line))
        except ValueError as exc:
            if number == len(lines) and not fragment:
                log.warning("Skipped the torn last line %d of %s: %s.", number, path, exc)
                return records, 1, offset
            raise CorruptLogError(f"order log {path}: line {number} is corrupt: {exc}") from exc
        offset += len(line) + 1
    if fragment:
        log.warning("Skipped the torn last line %d of %s.", len(lines) + 1, path)
    return records, int(bool(fragment)), offset


class OrderLog:
    """Appends records, each fsynced before `append` returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("ab", buffering=0)

    @classmethod
    def open(cls, path: Path) -> tuple[OrderLog, Orders]:
        """Read the log at `path`, cut off a torn tail, open it for appending."""
        path.parent.mkdir(parents=True, exist_ok=True)
        records, torn, valid_bytes = read(path)
        if torn:
            with path.open("r+b") as file:
                file.truncate(valid_bytes)
                os.fsync(file.fileno())
        orders = Orders(torn_lines=torn)
        for record in records:
            orders.apply(record)
        return cls(path), orders

    def append(self, record: Record) -> None:
        # Blocking but small (one write + fsync); acceptable inline on the event loop for now.
        body = _encoder.encode(record)
        size = self._file.tell()
        try:
            self._file.write(b"%08x %s\n" % (zlib.crc32(body), body))
            os.fsync(self._file.fileno())
        except OSError:
            self._file.truncate(size)  # a half-written line would read as corruption later
            raise

    def close(self) -> None:
        self._file.close()
