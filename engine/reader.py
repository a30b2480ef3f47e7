"""The one record reader: a segment's records in order, batches grouped, damage reported.

Recovery, compaction, ``seglog verify`` and ``seglog repair`` all read
segments through ``SegmentReader``, so they agree on what is a record, what
is a committed batch and what is damage. As LevelDB's ``log::Reader`` hands
dropped bytes to a ``Reporter`` and lets the caller decide, the reader
classifies each damaged region (``DamagedRegion``) and asks its ``Reporter`` whether
to read on past it or stop there; recovery's answer depends on its mode,
verify's is always "read on".

Batch members are held back until their commit marker has been read with the
right count, then yielded with it; a batch cut short (by a plain record, a
wrong count, damage the reporter stops at, or the end of the segment) is
handed to ``Reporter.incomplete_batch`` instead. Commit markers are always
yielded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_DELETE,
    BATCH_PUT,
    FILE_HEADER_SIZE,
    MIN_HEADER_SIZE,
    header_size,
    parse_record,
)

#: One valid record as read: offset, size, type, seq, expires_at, key. A tuple, not a
#: class: recovery makes one per record and reopening a large store is a hot path.
ScannedRecord = tuple[int, int, int, int, float, bytes]

#: The device's atomic unit: a power cut loses or keeps a sector whole. DamagedRegion in the
#: newest segment with a sector of zeros in it is space that was never written.
SECTOR: Final = 512


#: Nothing but zeros after the last record of the newest segment: space reserved
#: ahead of the writer, never written. Not damage, but the end of the log.
UNUSED: Final = "unused"
#: Bytes that are no record, with nothing valid after them, in the newest segment.
TORN_TAIL: Final = "torn-tail"
#: DamagedRegion in the newest segment, followed by valid records, holding a sector of zeros.
UNWRITTEN_GAP: Final = "unwritten-gap"
#: DamagedRegion followed by valid records that does not look like unwritten space.
CORRUPT: Final = "corrupt"
#: Bytes that are no record, with nothing valid after them, in a sealed segment.
CORRUPT_TAIL: Final = "corrupt-tail"
#: Zeros after the last record of a sealed segment (sealing cuts a segment to its records).
ZERO_TAIL: Final = "zero-tail"


@dataclass(frozen=True, slots=True)
class DamagedRegion:
    """A region of a segment that holds no valid record, and what follows it."""

    kind: str
    offset: int
    #: Where valid records resume, or None if nothing valid follows.
    resume: int | None
    #: The segment's length (so that ``length`` needs no second look at the data).
    size: int

    @property
    def length(self) -> int:
        """Bytes from ``offset`` to where records resume (or the end of the segment)."""
        return (self.resume if self.resume is not None else self.size) - self.offset


class Reporter(Protocol):
    """Told about damage and incomplete batches; decides whether reading goes on."""

    def damaged(self, damage: DamagedRegion) -> bool:
        """True to read on from ``damage.resume``, False to stop the segment at the damage."""
        ...

    def incomplete_batch(
        self, members: list[ScannedRecord], marker: ScannedRecord | None, why: str
    ) -> None:
        """Batch records never to be applied: ``why`` says what cut them short.

        ``marker`` is the commit marker whose count did not match, if that was it.
        """
        ...


#: Recovery's fused fast path: applies plain records from an offset, returns where it stopped.
FastRun = Callable[[bytes, int], int]


class SegmentReader:
    """Iterates one segment's committed records; ``end`` is the length the segment should keep.

    ``newest`` marks the log's newest segment, which a crash may have left
    half-written. ``fast_run``, if given, is called at each record boundary
    outside a batch and may consume a run of plain records itself (recovery's
    ``apply_plain_run``); the records it consumes are not yielded.
    """

    def __init__(
        self,
        data: bytes,
        reporter: Reporter,
        *,
        newest: bool,
        start: int = FILE_HEADER_SIZE,
        fast_run: FastRun | None = None,
    ) -> None:
        self.data = data
        self.reporter = reporter
        self.newest = newest
        self.start = start
        self.fast_run = fast_run
        self.end = start

    def __iter__(self) -> Iterator[ScannedRecord]:
        data = self.data
        size = len(data)
        reporter = self.reporter
        fast_run = self.fast_run
        offset = self.start
        batch: list[ScannedRecord] = []
        #: Whether damage with nothing valid after it was read past: the segment keeps it.
        kept_tail = False
        while True:
            if fast_run is not None and not batch:
                offset = fast_run(data, offset)
            record = record_at(data, offset)
            if record is not None:
                offset += record[1]
                rtype = record[2]
                if rtype in (BATCH_PUT, BATCH_DELETE):
                    batch.append(record)
                    continue
                if rtype == BATCH_COMMIT:
                    count = _value_of(data, record)
                    if count == BATCH_COUNT.pack(len(batch)):
                        yield from batch
                    else:
                        counted = BATCH_COUNT.unpack(count)[0] if len(count) == 4 else -1
                        why = f"its commit marker (seq {record[3]}) counts {counted}"
                        reporter.incomplete_batch(batch, record, why)
                    batch = []
                elif batch:
                    reporter.incomplete_batch(batch, None, "no commit marker follows")
                    batch = []
                yield record
                continue
            if offset == size:
                self.end = size
                break
            damage = classify(data, offset, newest=self.newest)
            if not reporter.damaged(damage):
                self.end = offset
                break
            if damage.resume is None:
                self.end = size
                kept_tail = True
                break
            offset = damage.resume
        if batch:
            reporter.incomplete_batch(batch, None, "no commit marker follows")
            if not kept_tail:
                # Cut where the batch began: appending after half a batch would bury it.
                self.end = batch[0][0]


def classify(data: bytes, offset: int, *, newest: bool) -> DamagedRegion:
    """What the bytes from ``offset`` (which do not parse as a record) are."""
    size = len(data)
    resume = next_valid_record(data, offset + 1)
    if resume is None:
        if not any(data[offset:]):
            kind = UNUSED if newest else ZERO_TAIL
        else:
            kind = TORN_TAIL if newest else CORRUPT_TAIL
    elif newest and unwritten(data, offset, resume):
        kind = UNWRITTEN_GAP
    else:
        kind = CORRUPT
    return DamagedRegion(kind, offset, resume, size)


def unwritten(data: bytes, start: int, stop: int) -> bool:
    """Whether damage ``data[start:stop]`` followed by valid records was never written.

    A power cut can keep later sectors of an unsynced tail and lose earlier
    ones. The active segment is reserved in zeros, so a lost sector reads as
    zeros: some sector of the damage (clipped to it) holds nothing else. Bit rot
    or a stray write does not look like that.
    """
    low = start
    while low < stop:
        high = min(stop, (low // SECTOR + 1) * SECTOR)
        if not any(data[low:high]):
            return True
        low = high
    return False


def record_at(data: bytes, offset: int) -> ScannedRecord | None:
    """The valid record at ``offset``, as the reader yields it, or None."""
    parsed = parse_record(data, offset)
    if parsed is None:
        return None
    rtype, seq, expires_at, head, klen, size = parsed
    key_start = offset + head
    return offset, size, rtype, seq, expires_at, data[key_start : key_start + klen]


def next_valid_record(data: bytes, start: int) -> int | None:
    """The first offset at or after ``start`` where a valid record begins, or None.

    Tells a torn tail (nothing valid follows) from corruption in the middle
    (valid records follow the damage). A zero-filled rest is answered without
    the byte-by-byte search.
    """
    if not any(data[start:]):
        return None
    for offset in range(start, len(data) - MIN_HEADER_SIZE + 1):
        if parse_record(data, offset) is not None:
            return offset
    return None


def _value_of(data: bytes, record: ScannedRecord) -> bytes:
    offset, size, _rtype, _seq, _exp, key = record
    return data[offset + header_size(data, offset) + len(key) : offset + size]
