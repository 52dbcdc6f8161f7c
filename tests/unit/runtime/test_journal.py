"""The journal: only a final fragment without its newline is a torn write (dropped, counted, cut
off before appending); a complete line that fails its CRC or its decoding, anywhere, is damage
named by file, line and byte offset; `repair` moves the damaged suffix to a side file."""

from __future__ import annotations

import json
import logging
import zlib
from pathlib import Path

import pytest

from components.core.errors import CorruptLineError, CorruptLogError
from components.runtime import journal


class Noted(journal.Record, tag="noted"):
    amount: str


class Journal(journal.Journal[Noted]):
    record_type = Noted


RECORDS = [Noted(ts_logged_ns=n, amount=f"{n}.25") for n in range(1, 5)]


def write(path: Path, records: list[Noted] = RECORDS) -> bytes:
    log, _ = Journal.open(path)
    for record in records:
        log.append(record)
    log.close()
    return path.read_bytes()


def offset_of(data: bytes, line: int) -> int:
    """The byte offset where line `line` (from 1) starts."""
    return sum(len(part) + 1 for part in data.split(b"\n")[: line - 1])


def damage_line(data: bytes, line: int) -> bytes:
    """`data` with one byte of line `line`'s body flipped: complete, newline kept, CRC wrong."""
    start = offset_of(data, line) + 12
    return data[:start] + bytes([data[start] ^ 0x01]) + data[start + 1 :]


def test_read_when_complete_last_line_fails_crc_then_corrupt_naming_file_line_and_offset(
    tmp_path: Path,
) -> None:
    """It was fsynced before it was acted on: a confirmed fill, perhaps. Never dropped."""
    path = tmp_path / "a.log"
    data = write(path)
    path.write_bytes(damage_line(data, 4))
    with pytest.raises(CorruptLineError) as caught:
        Journal.read(path)
    error = caught.value
    assert isinstance(error, CorruptLogError) and isinstance(error, ValueError)
    assert (error.path, error.line, error.offset) == (path, 4, offset_of(data, 4))
    assert str(error).startswith(f"journal {path}: line 4 is corrupt: CRC mismatch")
    assert f"at byte {offset_of(data, 4)}" in str(error)
    assert "\n" not in str(error)


def test_read_when_complete_last_line_undecodable_then_corrupt(tmp_path: Path) -> None:
    """A right CRC over a body that is not a record (not UTF-8 here) is damage too."""
    path = tmp_path / "a.log"
    data = write(path, RECORDS[:2])
    body = b'{"record":"noted","amount":"\xff"}'
    path.write_bytes(data + journal.frame(body))
    with pytest.raises(CorruptLineError, match=r"line 3 is corrupt: bad record") as caught:
        Journal.read(path)
    assert caught.value.offset == len(data)


def test_read_when_middle_line_damaged_then_corrupt_with_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    data = write(path)
    path.write_bytes(damage_line(data, 2))
    with pytest.raises(CorruptLineError, match=rf"line 2 .*\(at byte {offset_of(data, 2)}\)$"):
        Journal.read(path)


def test_read_when_final_fragment_has_no_newline_then_torn_and_dropped_with_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Never fsynced whole, so never acted on: a torn write, even if its bytes check out."""
    path = tmp_path / "a.log"
    data = write(path)
    for fragment in (b"0bad", journal.encode(RECORDS[0])[:-1]):
        path.write_bytes(data + fragment)
        with caplog.at_level(logging.WARNING):
            replay = Journal.read(path)
        assert (replay.records, replay.torn_lines, replay.valid_bytes) == (RECORDS, 1, len(data))
        assert f"Skipped the torn last line 5 of {path}" in caplog.text


def test_open_when_tail_torn_then_cut_off_counted_and_next_record_on_a_clean_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "a.log"
    data = write(path, RECORDS[:2])
    path.write_bytes(data + b'deadbeef {"record":"no')
    before = journal.torn_lines_cut(path)
    with caplog.at_level(logging.WARNING):
        log, replay = Journal.open(path)
    log.append(RECORDS[2])
    log.close()
    assert replay.torn_lines == 1
    assert path.read_bytes() == data + journal.encode(RECORDS[2])
    assert list(Journal.read(path)) == RECORDS[:3]
    assert journal.torn_lines_cut(path) == before + 1
    assert f"Cut the torn last line 3 off {path} at byte {len(data)}" in caplog.text


def test_open_when_a_complete_line_is_damaged_then_refuses_and_leaves_the_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.log"
    damaged = damage_line(write(path), 4)
    path.write_bytes(damaged)
    with pytest.raises(CorruptLineError):
        Journal.open(path)
    assert path.read_bytes() == damaged


def test_check_when_damaged_then_damage_found_and_nothing_raised(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    data = write(path)
    path.write_bytes(damage_line(data, 3))
    damage = journal.check(path, Noted)
    assert damage is not None
    assert (damage.line, damage.offset) == (3, offset_of(data, 3))
    path.write_bytes(data + b"torn")
    assert journal.check(path, Noted) is None
    assert journal.check(tmp_path / "absent.log", Noted) is None


def test_repair_when_a_line_is_damaged_then_suffix_moved_aside_and_the_rest_loads(
    tmp_path: Path,
) -> None:
    path = tmp_path / "a.log"
    data = write(path)
    damaged = damage_line(data, 3)
    path.write_bytes(damaged + b"torn")
    damage = journal.check(path, Noted)
    assert damage is not None

    repaired = journal.repair(damage, Noted, stamp="20261204T211500Z")

    assert repaired.side_file == tmp_path / "a.log.damaged-20261204T211500Z"
    assert repaired.side_file.read_bytes() == damaged[offset_of(data, 3) :] + b"torn"
    assert path.read_bytes() == data[: offset_of(data, 3)]
    assert list(Journal.read(path)) == RECORDS[:2]
    assert repaired.lost_bytes == len(damaged) - offset_of(data, 3) + 4
    assert [(lost.line, lost.offset) for lost in repaired.lost] == [
        (3, offset_of(data, 3)),
        (4, offset_of(data, 4)),
        (5, len(damaged)),
    ]
    first, second, fragment = repaired.lost
    # The damaged line's body still parses: say what it held, and that it failed its CRC.
    assert first.problem is not None and first.problem.startswith("CRC mismatch")
    assert first.body is not None and json.loads(first.body)["amount"] == "3.25"
    # A good line after it is lost too (replaying past a hole is wrong), and says so.
    assert second.problem is None
    assert second.body is not None and json.loads(second.body)["amount"] == "4.25"
    assert fragment.body is None and fragment.problem is not None


def test_repair_when_side_file_name_taken_then_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(damage_line(write(path), 1))
    (tmp_path / "a.log.damaged-X").write_bytes(b"earlier")
    damage = journal.check(path, Noted)
    assert damage is not None
    repaired = journal.repair(damage, Noted, stamp="X")
    assert repaired.side_file == tmp_path / "a.log.damaged-X-1"
    assert (tmp_path / "a.log.damaged-X").read_bytes() == b"earlier"
    assert path.read_bytes() == b""


def test_frame_when_checked_then_crc_of_the_body(tmp_path: Path) -> None:
    body = b'{"record":"noted"}'
    assert journal.frame(body) == b"%08x %s\n" % (zlib.crc32(body), body)
