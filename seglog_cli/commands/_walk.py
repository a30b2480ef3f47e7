"""Read-only walks over segment files: every intact record, and precisely where damage lies.

The records come from the engine's own reader (``engine.reader``), so the
walk sees exactly the records, batches and damage that recovery sees. Unlike
recovery it never truncates or renames anything, and it never stops at
damage: it reads on from wherever intact records resume, so ``verify`` can
report every damaged region and ``repair`` can salvage every intact record.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

from engine.errors import CorruptionError
from engine.format import (
    FILE_HEADER_SIZE,
    LAYOUTS,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    MIN_HEADER_SIZE,
    TYPE_MASK,
    RecordType,
)
from engine.reader import (
    CORRUPT,
    CORRUPT_TAIL,
    TORN_TAIL,
    UNUSED,
    UNWRITTEN_GAP,
    DamagedRegion,
    ScannedRecord,
    SegmentReader,
    record_at,
)
from engine.segment import check_segment_header, is_torn_header
from seglog_cli.commands._common import render_bytes, show_bytes

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
    layout = LAYOUTS[data[offset + 4]] if len(data) - offset >= MIN_HEADER_SIZE else None
    if len(data) - offset < (MIN_HEADER_SIZE if layout is None else layout[1]):
        return "too short for a record header", ()
    if layout is None:
        return "no readable record header", ()
    # The header as docs/FORMAT.md lays it out, read here without checking its CRC.
    _crc, tag, seq, key_len, value_len = layout[0](data, offset)
    rtype = tag & TYPE_MASK
    if rtype not in _TYPES or key_len > MAX_KEY_SIZE or value_len > MAX_VALUE_SIZE:
        return "no readable record header", ()
    start = offset + layout[1]
    key = data[start : start + key_len]
    shown = show_bytes(key[:_SHOWN_KEY]) + ("..." if key_len > _SHOWN_KEY else "")
    text = f"its header reads {_TYPES[rtype]} seq {seq}, key {shown!r}, {value_len}-byte value"
    return text, ((key, seq),) if len(key) == key_len and key else ()


class SegmentWalk:
    """Iterates the intact records of one segment file; ``damage`` fills in as it goes.

    ``newest`` marks the segment a crash may have left half-written: zeros
    after its records are the engine's preallocated space (``unused``), and
    garbage at its end is a ``torn-tail`` rather than ``corrupt-tail``. The
    walk is the reader's ``Reporter``: it notes each damaged region and reads on.
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
        for record in SegmentReader(data, self, newest=self.newest):
            self.records += 1
            self._last_seq = record[3]
            yield record

    # -------------------------------------------------------------- Reporter

    def damaged(self, damage: DamagedRegion) -> bool:
        """Note a damaged region and read on past it."""
        data, end = self.data, damage.offset
        if damage.kind == UNUSED:
            self.unused = damage.length
            return True
        if damage.resume is None:
            text, claims = claim(data, end)
            what = f"{text}; {self._seqs()}, nothing intact follows"
            if damage.kind == TORN_TAIL:
                length = len(data[end:].rstrip(b"\0"))
                self._damaged(end, length, TORN_TAIL, f"{what} (opening cuts it)", claims)
            elif damage.kind == CORRUPT_TAIL:
                self._damaged(
                    end, damage.length, CORRUPT_TAIL, f"{what} in a sealed segment", claims
                )
            else:
                self._damaged(end, damage.length, damage.kind, "zero bytes in a sealed segment")
            return True
        resumed = record_at(data, damage.resume)
        after = resumed[3] if resumed is not None else "?"
        resumes = f"intact records resume at offset {damage.resume} (seq {after})"
        if damage.kind == UNWRITTEN_GAP:
            self._damaged(
                end,
                damage.length,
                UNWRITTEN_GAP,
                f"zero pages a power cut left unwritten; {self._seqs()}, {resumes}; "
                "opening cuts the segment here, dropping the records after it",
            )
        else:
            text, claims = claim(data, end)
            self._damaged(end, damage.length, CORRUPT, f"{text}; {self._seqs()}, {resumes}", claims)
        return True

    def incomplete_batch(
        self, members: list[ScannedRecord], marker: ScannedRecord | None, why: str
    ) -> None:
        """Note batch records that recovery would never apply."""
        self.records += len(members)
        if not members:
            assert marker is not None, "an empty batch is cut short only by its marker"
            offset, size, _rtype, seq = marker[:4]
            self._damaged(
                offset,
                size,
                "incomplete-batch",
                f"a batch commit marker (seq {seq}) counts "
                f"{why.rsplit(' ', 1)[-1]} records; none are intact before it",
            )
            return
        first, last = members[0], members[-1]
        self._damaged(
            first[0],
            last[0] + last[1] - first[0],
            "incomplete-batch",
            f"{len(members)} batch records (seq {first[3]}..{last[3]}) never applied: {why}",
            tuple((record[5], record[3]) for record in members),
        )
        self._last_seq = last[3]

    def _seqs(self) -> str:
        if self._last_seq is None:
            return "no intact record before it"
        return f"last intact record before it is seq {self._last_seq}"


def read_file(directory: str, name: str) -> bytes:
    """The whole of one file of the store, opened read-only."""
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()
