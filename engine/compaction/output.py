"""Compaction output: the rewrite that sorts input records into copied and dropped, and
the ``.cseg`` segments (with their hints) that the copies are written to.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.compaction.policy import Plan
from engine.format import (
    BATCH_COMMIT,
    BATCH_DELETE,
    BATCH_PUT,
    DELETE,
    FILE_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
    VALUE_LEN_U8,
    FileKind,
    encode_file_header,
    encode_record,
    header_size,
)
from engine.fs import FileHandle, FileSystem, write_all
from engine.hints import HintBuilder, write_hint
from engine.keyspace import Keyspace
from engine.location import SEGMENT_SHIFT, pack_location
from engine.reader import ScannedRecord
from engine.segment import segment_name

#: Output bytes buffered before a write to the file.
WRITE_CHUNK: Final = 1 << 20


@dataclass
class CompactionReport:
    """What one compaction read, wrote and dropped.

    ``bytes_before`` is the inputs' size; ``bytes_after`` the outputs' and
    their hints'. Dropped records are counted by why they were dead.
    ``lost_races`` counts copies that a concurrent write made dead before they
    were installed (they stay in the output as dead bytes).
    """

    trigger: str
    segments_in: list[str] = field(default_factory=list)
    segments_out: list[str] = field(default_factory=list)
    bytes_before: int = 0
    bytes_after: int = 0
    hint_bytes: int = 0
    records_in: int = 0
    records_out: int = 0
    dropped_overwritten: int = 0
    dropped_deleted: int = 0
    dropped_expired: int = 0
    dropped_tombstones: int = 0
    dropped_batch_markers: int = 0
    tombstones_kept: int = 0
    lost_races: int = 0
    seconds: float = 0.0
    finished_at: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for ``stats()`` and JSON)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class OutputPlace:
    """Where outputs go: the file system, the store directory, and the most an output holds."""

    fs: FileSystem
    directory: str
    segment_size: int


class OutputSegment:
    """One output segment being written, and its hint."""

    def __init__(self, fs: FileSystem, directory: str, segment_id: int) -> None:
        self.segment_id = segment_id
        path = os.path.join(directory, segment_name(segment_id))
        self.handle: FileHandle = fs.open(path, create=True)
        self.handle.truncate(0)
        self.buffer = [encode_file_header(FileKind.SEGMENT)]
        self.buffered = FILE_HEADER_SIZE
        self.size = FILE_HEADER_SIZE
        self.hint = HintBuilder()
        #: Per record, the location it was copied from (0 for a kept tombstone).
        self.sources: list[int] = []
        self.min_seq = 0
        self.tombstone_bytes = 0
        self.hint_bytes = 0
        self.finished = False

    def add(self, record: bytes, key: bytes, seq: int, expires_at: float, source: int) -> None:
        """Append a copied record (``source`` is its location) or a tombstone (``source`` 0)."""
        self.buffer.append(record)
        self.buffered += len(record)
        self.size += len(record)
        self.hint.add(key, seq, len(record), PUT if source else DELETE, expires_at)
        self.sources.append(source)
        if not source:
            self.tombstone_bytes += len(record)
        if seq < self.min_seq or not self.min_seq:
            self.min_seq = seq
        if self.buffered >= WRITE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        write_all(self.handle, b"".join(self.buffer))
        self.buffer.clear()
        self.buffered = 0

    def finish(self, fs: FileSystem, directory: str) -> None:
        """Write out, fsync and close the segment, then write and fsync its hint."""
        self._flush()
        self.handle.fsync()
        self.handle.close()
        self.hint_bytes = write_hint(fs, directory, self.segment_id, self.hint)
        self.finished = True

    def locations(self) -> list[int]:
        """Each record's location in this segment."""
        return list(map((self.segment_id << SEGMENT_SHIFT).__or__, self.hint.refs))


class Rewrite:
    """Reads the inputs (``replay_segment`` hands over their committed records) and copies.

    A record is live if the index still points at it and it has not expired:
    it is copied. Every other record is dead, except that for each key the
    index does not hold, the newest record in the inputs may have to stay as
    a tombstone; those are decided once every input has been read.
    """

    def __init__(
        self,
        plan: Plan,
        report: CompactionReport,
        keyspace: Keyspace,
        place: OutputPlace,
        next_id: int,
        check_stopping: Callable[[], None],
    ) -> None:
        self.plan = plan
        self.report = report
        self.keyspace = keyspace
        self.place = place
        self.check_stopping = check_stopping
        self.now = plan.now
        #: The bytes of the input being read.
        self.data = b""
        #: For each key the index does not hold: its newest record in the inputs.
        self.latest: dict[bytes, ScannedRecord] = {}
        self.outputs: list[OutputSegment] = []
        self.next_id = next_id

    def _output(self, size: int) -> OutputSegment:
        """The output to append ``size`` bytes to; the current one is finished when full."""
        outputs = self.outputs
        place = self.place
        if outputs:
            current = outputs[-1]
            if current.size + size <= place.segment_size or not current.sources:
                return current
            current.finish(place.fs, place.directory)
        self.check_stopping()
        output = OutputSegment(place.fs, place.directory, self.next_id)
        self.next_id += 1
        outputs.append(output)
        return output

    def apply(self, segment_id: int, record: ScannedRecord) -> None:
        """Classify one input record: copy it, count it dropped, or keep it for later."""
        offset, size, rtype, seq, expires_at, key = record
        if rtype == BATCH_COMMIT:
            self.report.dropped_batch_markers += 1
            return
        current = self.keyspace.live_location(key, self.now)
        if current is not None:
            if current == pack_location(segment_id, offset, size):
                self._copy(record, current)
            elif rtype == PUT and expires_at == NO_EXPIRY:
                self.report.dropped_overwritten += 1  # the common case, without a call
            else:
                self._drop(record, live=True)
            return
        latest = self.latest.get(key)
        if latest is not None and latest[3] >= seq:
            self._drop(record, live=False)
            return
        if latest is not None:
            self._drop(latest, live=False)
        self.latest[key] = record

    def _copy(self, record: ScannedRecord, source: int) -> None:
        offset, size, rtype, seq, expires_at, key = record
        data = self.data[offset : offset + size]
        if rtype == BATCH_PUT or data[4] < VALUE_LEN_U8:
            # A batch put's batch committed (or the index would not point at it): it stands
            # alone now. A version-1 record (no width bits in its tag) is rewritten in version 2.
            data = encode_record(PUT, seq, expires_at, key, data[header_size(data) + len(key) :])
        self._output(len(data)).add(data, key, seq, expires_at, source)
        self.report.records_out += 1

    def _drop(self, record: ScannedRecord, *, live: bool) -> None:
        """Count a dead record; ``live`` tells whether its key has a newer live value."""
        rtype, expires_at = record[2], record[4]
        report = self.report
        if rtype in (DELETE, BATCH_DELETE):
            report.dropped_tombstones += 1
        elif expires_at != NO_EXPIRY and expires_at <= self.now:
            report.dropped_expired += 1
        elif live:
            report.dropped_overwritten += 1
        else:
            report.dropped_deleted += 1

    def finish(self) -> None:
        """Settle the keys the index does not hold, then finish every output."""
        now = self.now
        keep_after = self.plan.keep_after
        for key, record in self.latest.items():
            rtype, seq, expires_at = record[2], record[3], record[4]
            expired = expires_at != NO_EXPIRY and expires_at <= now
            removal = rtype in (DELETE, BATCH_DELETE) or expired
            if removal and seq > keep_after:
                # An older segment outside the compaction may hold this key: keep shadowing it.
                tombstone = encode_record(DELETE, seq, NO_EXPIRY, key)
                self._output(len(tombstone)).add(tombstone, key, seq, NO_EXPIRY, 0)
                self.report.tombstones_kept += 1
                self.report.records_out += 1
            else:
                # A removal nothing older needs, or a put a newer delete outside shadows.
                self._drop(record, live=False)
        self.latest.clear()
        report = self.report
        report.records_in = report.records_out + sum(
            (
                report.dropped_overwritten,
                report.dropped_deleted,
                report.dropped_expired,
                report.dropped_tombstones,
                report.dropped_batch_markers,
            )
        )
        for output in self.outputs:
            if not output.finished:
                output.finish(self.place.fs, self.place.directory)
