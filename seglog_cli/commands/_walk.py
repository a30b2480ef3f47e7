"""Read-only walks over segment files: every intact record, and precisely where damage lies.

Unlike the engine's recovery this never truncates or renames anything, and it
does not stop at damage: it searches byte by byte for the next record whose
CRC holds and carries on, so ``verify`` can report every damaged region and
``repair`` can salvage every intact record. Batch records are yielded only
with their commit marker, as recovery applies them.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from engine.errors import CorruptionError
from engine.format import FILE_HEADER_SIZE, HEADER_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE, RecordType
from engine.recovery import BATCH_COUNT, UNWRITTEN_RUN
from engine.segment import (
    ScannedRecord,
    SegmentScan,
    check_segment_header,
    is_torn_header,
    next_valid_record,
)
from seglog_cli.commands._common import render_bytes, show_bytes

#: A record header as docs/FORMAT.md lays it out, read here without checking it.
_HEADER: Final = struct.Struct("<IBQdII")
_BATCH_MEMBERS: Final = (int(RecordType.BATCH_PUT), int(RecordType.BATCH_DELETE))
_BATCH_COMMIT: Final = int(RecordType.BATCH_COMMIT)
_TYPES: Final = {int(t): t.name for t in RecordType}
#: Bytes of a claimed key shown in a damage report.
_SHOWN_KEY: Final = 60


@dataclass(frozen=True)
class Damage:
    """One damaged region of a file: where it is, what kind, and what it held as far as known."""

    file: str
    offset: int
    length: int
    kind: str
    detail: str
    #: ``(key, seq)`` of the records the damage hit, as far as their headers can be read.
    claims: tuple[tuple[bytes, int], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape ``verify`` and ``repair`` report."""
        where = {name: getattr(self, name) for name in ("file", "offset", "length", "kind")}
        claims = [{"key": render_bytes(key), "seq": seq} for key, seq in self.claims]
        return {**where, "detail": self.detail, "claims": claims}

    def __str__(self) -> str:
        where = f"{self.file} at offset {self.offset} ({self.length} bytes)"
        return f"{where}: {self.kind}: {self.detail}"


def claim(data: bytes, offset: int) -> tuple[str, tuple[tuple[bytes, int], ...]]:
    """What the (failed) record header at ``offset`` says it holds: a description and its claim.

    The claim, ``((key, seq),)``, is empty when the header is unreadable or the
    key it names runs past the end of the file.
    """
    if len(data) - offset < HEADER_SIZE:
        return "too short for a record header", ()
    _crc, rtype, seq, _expires, key_len, value_len = _HEADER.unpack_from(data, offset)
    if rtype not in _TYPES or key_len > MAX_KEY_SIZE or value_len > MAX_VALUE_SIZE:
        return "no readable record header", ()
    start = offset + HEADER_SIZE
    key = data[start : start + key_len]
    shown = show_bytes(key[:_SHOWN_KEY]) + ("..." if key_len > _SHOWN_KEY else "")
    text = f"its header reads {_TYPES[rtype]} seq {seq}, key {shown!r}, {value_len}-byte value"
    return text, ((key, seq),) if len(key) == key_len and key else ()


class SegmentWalk:
    """Iterates the intact records of one segment file; ``damage`` fills in as it goes.

    ``newest`` marks the segment a crash may have left half-written: zeros
    after its records are the engine's preallocated space (``unused``), and
    garbage at its end is a ``torn-tail`` rather than ``corrupt-tail``.
    """

    def __init__(self, name: str, data: bytes, *, newest: bool) -> None:
        self.name = name
        self.data = data
        self.newest = newest
        self.damage: list[Damage] = []
        self.records = 0
        self.unused = 0
        self._last_seq: int | None = None

    def _damaged(
        self,
        offset: int,
        length: int,
        kind: str,
        detail: str,
        claims: tuple[tuple[bytes, int], ...] = (),
    ) -> None:
        self.damage.append(Damage(self.name, offset, length, kind, detail, claims))

    def __iter__(self) -> Iterator[ScannedRecord]:
        data, size = self.data, len(self.data)
        if self.newest and is_torn_header(data):
            torn = len(data.rstrip(b"\0"))
            if torn:
                self._damaged(0, torn, "torn-header", "segment creation cut short by a crash")
            self.unused = size - torn
            return
        try:
            check_segment_header(data, self.name)
        except CorruptionError as exc:
            self._damaged(0, min(size, FILE_HEADER_SIZE), "bad-header", str(exc))
        start = FILE_HEADER_SIZE
        while start < size:
            scan = SegmentScan(data, start)
            yield from self._batched(scan)
            end = scan.end
            if end >= size:
                return
            if not any(data[end:]):
                if self.newest:
                    self.unused = size - end
                else:
                    self._damaged(end, size - end, "zero-tail", "zero bytes in a sealed segment")
                return
            resume = next_valid_record(data, end + 1)
            if resume is None:
                self._tail(end)
                return
            after = _HEADER.unpack_from(data, resume)[2]
            text, claims = claim(data, end)
            resumes = f"intact records resume at offset {resume} (seq {after})"
            if self.newest and _unwritten(data[end:resume]):
                self._damaged(
                    end,
                    resume - end,
                    "unwritten-gap",
                    f"zero pages a power cut left unwritten; {self._seqs()}, {resumes}; "
                    "opening cuts the segment here, dropping the records after it",
                )
            else:
                self._damaged(
                    end, resume - end, "corrupt", f"{text}; {self._seqs()}, {resumes}", claims
                )
            start = resume

    def _batched(self, scan: SegmentScan) -> Iterator[ScannedRecord]:
        """The records of ``scan``, batch members held back until their commit marker."""
        batch: list[ScannedRecord] = []
        for record in scan:
            self.records += 1
            offset, size, rtype, seq, _expires, key = record
            if rtype in _BATCH_MEMBERS:
                batch.append(record)
                continue
            if rtype == _BATCH_COMMIT:
                value = self.data[offset + HEADER_SIZE + len(key) : offset + size]
                count = BATCH_COUNT.unpack(value)[0] if len(value) == BATCH_COUNT.size else -1
                if count == len(batch):
                    yield from batch
                elif batch:
                    self._incomplete(batch, f"its commit marker (seq {seq}) counts {count}")
                else:
                    self._damaged(
                        offset,
                        size,
                        "incomplete-batch",
                        f"a batch commit marker (seq {seq}) counts {count} records; "
                        "none are intact before it",
                    )
                batch = []
            elif batch:
                self._incomplete(batch, "no commit marker follows")
                batch = []
            self._last_seq = seq
            yield record
        if batch:
            self._incomplete(batch, "no commit marker follows")

    def _incomplete(self, batch: list[ScannedRecord], why: str) -> None:
        first, last = batch[0], batch[-1]
        self._damaged(
            first[0],
            last[0] + last[1] - first[0],
            "incomplete-batch",
            f"{len(batch)} batch records (seq {first[3]}..{last[3]}) never applied: {why}",
            tuple((record[5], record[3]) for record in batch),
        )
        self._last_seq = last[3]

    def _tail(self, end: int) -> None:
        """Report the unparsable bytes from ``end`` to the end of the file."""
        tail = self.data[end:]
        text, claims = claim(self.data, end)
        what = f"{text}; {self._seqs()}, nothing intact follows"
        if self.newest:
            length = len(tail.rstrip(b"\0"))
            self._damaged(end, length, "torn-tail", f"{what} (opening cuts it)", claims)
        else:
            self._damaged(end, len(tail), "corrupt-tail", f"{what} in a sealed segment", claims)

    def _seqs(self) -> str:
        if self._last_seq is None:
            return "no intact record before it"
        return f"last intact record before it is seq {self._last_seq}"


def _unwritten(gap: bytes) -> bool:
    """Whether a gap in the newest segment is what recovery takes for unwritten space.

    The same test as recovery's: a run of zeros (``UNWRITTEN_RUN`` bytes, or the
    whole gap if shorter), which is what a lost page of the zero-reserved active
    segment reads as.
    """
    return bytes(min(len(gap), UNWRITTEN_RUN)) in gap


def read_file(directory: str, name: str) -> bytes:
    """The whole of one file of the store, opened read-only."""
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()
