"""Compaction: rewrite sealed segments without their dead records, while writes go on.

A compaction runs in five steps. The write lock is taken only to plan, to
install (in small slices) and to stop reading the inputs, never while copying:

1. **Plan** (lock held): pick sealed input segments (``compact()`` first
   rolls the active segment over so that everything written is eligible,
   after an fsync outside the lock so that the rollover's is short), note the
   mappings to read them through and the clock.
2. **Rewrite** (no lock): scan the inputs, copy each record the index still
   points at (with its original sequence number and expiry) into new
   ``.cseg`` segments, each with a hint file; fsync them and the directory.
   Overwritten, deleted and expired records and batch markers are dropped. A
   tombstone (a delete, or a put that has expired) is kept, as a delete,
   only if a sealed segment outside the compaction holds records older than
   it, which might be the very key it deletes.
3. **Commit**: fsync the active segment, so every write that made an input
   record dead is durable; then atomically replace the manifest, naming the
   outputs live and the inputs dropped (see ``engine.manifest``).
4. **Install** (lock held per slice of 1024 keys): point the index at the
   copies with compare-and-swap, so a write that raced the compaction wins
   and its copy just counts as dead.
5. **Retire**: stop reading the inputs, delete them, fsync the directory.

A crash anywhere leaves a state that ``open_manifest`` finishes: before the
commit the outputs are leftovers and the inputs are whole; after it, the
outputs are live and any input still present is deleted. Recovery resolves
what both hold by sequence number, so order of files never matters.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from engine.background import start_polling
from engine.errors import StorageError
from engine.format import (
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    NO_EXPIRY,
    FileKind,
    RecordType,
    encode_file_header,
    encode_record,
    parse_record,
)
from engine.fs import FileHandle, FileSystem, Mapping
from engine.hints import MAX_SEGMENT_BYTES, HintBuilder, hint_name, write_hint
from engine.keyspace import Keyspace
from engine.location import SEGMENT_SHIFT, pack_location
from engine.manifest import (
    MANIFEST,
    CompactedSegment,
    Manifest,
    commit_manifest,
    open_manifest,
)
from engine.reader import ScannedRecord
from engine.recovery import RecoveryMode, RecoveryReport, replay_segment
from engine.segment import COMPACTED_BASE, segment_name
from engine.writer import SegmentWriter

log = logging.getLogger("seglog.compaction")

#: Keys installed per hold of the write lock: short enough that writers barely wait.
INSTALL_SLICE: Final = 1024
#: Output bytes buffered before a write to the file.
WRITE_CHUNK: Final = 1 << 20

_PUT: Final = int(RecordType.PUT)
_DELETE: Final = int(RecordType.DELETE)
_BATCH_PUT: Final = int(RecordType.BATCH_PUT)
_BATCH_DELETE: Final = int(RecordType.BATCH_DELETE)
_BATCH_COMMIT: Final = int(RecordType.BATCH_COMMIT)
#: A record header's last two fields: key and value lengths.
_LENGTHS: Final = struct.Struct("<II")


#: Picks a compaction's inputs among the sealed segments (id -> bytes); called under the lock.
Chooser = Callable[[dict[int, int]], Iterable[int]]


class CancelledError(StorageError):
    """The store is closing: a compaction that had not committed yet was abandoned."""


@dataclass(frozen=True)
class CompactionOptions:
    """When automatic compaction runs.

    ``auto`` turns the background thread on. It compacts the sealed segments
    whose dead share of bytes is at least ``ratio`` once they hold
    ``min_bytes`` of dead data between them, checking every ``interval``
    seconds. ``Engine.compact()`` ignores all of these and compacts everything.
    """

    auto: bool = True
    ratio: float = 0.5
    min_bytes: int = 16 << 20
    interval: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.auto, bool):
            raise TypeError(f"auto_compact must be a bool, not {type(self.auto).__name__}")
        for name, value in (("compact_ratio", self.ratio), ("compact_interval", self.interval)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"compact_ratio must be in (0, 1], not {self.ratio!r}")
        if not 0.0 < self.interval < math.inf:
            raise ValueError(f"compact_interval must be positive, not {self.interval!r}")
        if isinstance(self.min_bytes, bool) or not isinstance(self.min_bytes, int):
            raise TypeError(
                f"compact_min_bytes must be an int, not {type(self.min_bytes).__name__}"
            )
        if self.min_bytes < 0:
            raise ValueError(f"compact_min_bytes must be >= 0, not {self.min_bytes}")


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


@dataclass
class _Plan:
    """What a compaction works on, captured under the write lock."""

    inputs: list[int]
    maps: dict[int, Mapping]
    sizes: dict[int, int]
    #: A tombstone newer than this must be kept: an outside segment holds older records.
    keep_after: float
    now: float


class _Output:
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
        self.hint.add(key, seq, len(record), _PUT if source else _DELETE, expires_at)
        self.sources.append(source)
        if not source:
            self.tombstone_bytes += len(record)
        if seq < self.min_seq or not self.min_seq:
            self.min_seq = seq
        if self.buffered >= WRITE_CHUNK:
            self._flush()

    def _flush(self) -> None:
        self.handle.write(b"".join(self.buffer))
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


class _Rewrite:
    """Reads the inputs (``replay_segment`` hands over their committed records) and copies.

    A record is live if the index still points at it and it has not expired:
    it is copied. Every other record is dead, except that for each key the
    index does not hold, the newest record in the inputs may have to stay as
    a tombstone; those are decided once every input has been read.
    """

    def __init__(self, compactor: Compactor, plan: _Plan, report: CompactionReport) -> None:
        self.compactor = compactor
        self.plan = plan
        self.report = report
        self.keyspace = compactor.keyspace
        self.now = plan.now
        #: The bytes of the input being read.
        self.data = b""
        #: For each key the index does not hold: its newest record in the inputs.
        self.latest: dict[bytes, ScannedRecord] = {}
        self.outputs: list[_Output] = []
        self.next_id = compactor.manifest.next_id()

    def _output(self, size: int) -> _Output:
        """The output to append ``size`` bytes to; the current one is finished when full."""
        outputs = self.outputs
        if outputs:
            current = outputs[-1]
            if current.size + size <= self.compactor.output_size or not current.sources:
                return current
            current.finish(self.compactor.fs, self.compactor.directory)
        self.compactor.check_stopping()
        output = _Output(self.compactor.fs, self.compactor.directory, self.next_id)
        self.next_id += 1
        outputs.append(output)
        return output

    def apply(self, segment_id: int, record: ScannedRecord) -> None:
        """Classify one input record: copy it, count it dropped, or keep it for later."""
        offset, size, rtype, seq, expires_at, key = record
        if rtype == _BATCH_COMMIT:
            self.report.dropped_batch_markers += 1
            return
        current = self.keyspace.live_location(key, self.now)
        if current is not None:
            if current == pack_location(segment_id, offset, size):
                self._copy(record, current)
            elif rtype == _PUT and expires_at == NO_EXPIRY:
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
        if rtype == _BATCH_PUT:
            # Its batch committed (or the index would not point at it): it stands alone now.
            data = encode_record(_PUT, seq, expires_at, key, data[HEADER_SIZE + len(key) :])
        self._output(len(data)).add(data, key, seq, expires_at, source)
        self.report.records_out += 1

    def _drop(self, record: ScannedRecord, *, live: bool) -> None:
        """Count a dead record; ``live`` tells whether its key has a newer live value."""
        rtype, expires_at = record[2], record[4]
        report = self.report
        if rtype in (_DELETE, _BATCH_DELETE):
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
            removal = rtype in (_DELETE, _BATCH_DELETE) or expired
            if removal and seq > keep_after:
                # An older segment outside the compaction may hold this key: keep shadowing it.
                tombstone = encode_record(_DELETE, seq, NO_EXPIRY, key)
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
                output.finish(self.compactor.fs, self.compactor.directory)


class Compactor:
    """Runs one engine's compactions, one at a time, and its automatic compaction thread."""

    def __init__(
        self,
        writer: SegmentWriter,
        keyspace: Keyspace,
        clock: Callable[[], float],
        *,
        segment_size: int,
        recovery: RecoveryMode,
        options: CompactionOptions,
    ) -> None:
        self.writer = writer
        self.keyspace = keyspace
        self.clock = clock
        self.recovery = recovery
        self.options = options
        self.fs = writer.fs
        self.directory = writer.directory
        self.output_size = min(segment_size, MAX_SEGMENT_BYTES)
        self.manifest = Manifest()
        self._manifest_on_disk = False
        self.last: CompactionReport | None = None
        self.count = 0
        self._stopping = threading.Event()
        self._running = threading.Lock()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle

    def open_directory(self) -> list[int]:
        """Finish what a crash interrupted (see ``open_manifest``); return the live outputs."""
        self.manifest = open_manifest(self.fs, self.directory)
        return sorted(self.manifest.segments)

    def start(self) -> None:
        """Start the automatic compaction thread, if the options ask for one."""
        if self.options.auto:
            self._thread = start_polling(
                self,
                Compactor.compact_automatically,
                self._stopping,
                self.options.interval,
                f"seglog-compact {self.directory}",
            )

    def shutdown(self) -> None:
        """Stop the thread and wait for a compaction in flight (it abandons if not committed)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._running:
            pass

    def check_stopping(self) -> None:
        """Raise CancelledError if the store is closing."""
        if self._stopping.is_set():
            raise CancelledError(f"{self.directory}: the store is closing; compaction abandoned")

    @property
    def stopping(self) -> bool:
        """Whether the store is closing (a compaction in flight abandons)."""
        return self._stopping.is_set()

    @property
    def running(self) -> bool:
        """Whether a compaction is in progress."""
        return self._running.locked()

    def compact_automatically(self) -> bool:
        """One round of the background thread: compact what ``select`` picks.

        Returns False once the thread should stop (the store failed or is closing).
        """
        writer = self.writer
        if writer.error is not None:
            return False
        try:
            self.compact(self.select, "auto")
        except CancelledError:
            return False
        except StorageError as exc:
            if writer.error is not None:
                return False
            log.error("%s: automatic compaction failed: %s", self.directory, exc)
        return True

    # ----------------------------------------------------------- compaction

    def compact(
        self, choose: Chooser | None = None, trigger: str = "explicit"
    ) -> CompactionReport | None:
        """Run one compaction to completion; None if there was nothing to reclaim.

        Without ``choose`` (what ``Engine.compact`` does) the active segment is
        rolled over and every sealed segment compacted, if any holds dead
        bytes; otherwise the sealed segments ``choose`` picks are.
        """
        with self._running:
            self.check_stopping()
            started = time.perf_counter()
            plan = self._plan(choose)
            if plan is None:
                return None
            report = CompactionReport(trigger)
            report.segments_in = [segment_name(i) for i in plan.inputs]
            report.bytes_before = sum(plan.sizes.values())
            log.info("%s: compacting %s", self.directory, report.segments_in)
            rewrite = _Rewrite(self, plan, report)
            try:
                self._rewrite(rewrite)
                # Every write that made an input record dead must be durable before
                # the commit allows the inputs to go.
                self.writer.sync()
            except BaseException as exc:
                self._abandon(rewrite.outputs)
                if isinstance(exc, OSError):
                    raise StorageError(f"{self.directory}: compaction failed: {exc}") from exc
                raise
            self._commit(plan, rewrite)
            self._install(rewrite)
            self._retire(plan)
            report.segments_out = [segment_name(o.segment_id) for o in rewrite.outputs]
            report.bytes_after = sum(o.size + o.hint_bytes for o in rewrite.outputs)
            report.hint_bytes = sum(o.hint_bytes for o in rewrite.outputs)
            report.seconds = time.perf_counter() - started
            report.finished_at = self.clock()
            self.last = report
            self.count += 1
            log.info(
                "%s: compacted into %s: %d -> %d bytes, %d of %d records kept, %.3fs",
                self.directory,
                report.segments_out,
                report.bytes_before,
                report.bytes_after,
                report.records_out,
                report.records_in,
                report.seconds,
            )
            return report

    def _plan(self, choose: Chooser | None) -> _Plan | None:
        """Pick the inputs (write lock held briefly); None if there is nothing to reclaim."""
        writer = self.writer
        keyspace = self.keyspace
        if choose is None:
            # Flush the active segment first, so the rollover's fsync under the lock is short.
            writer.sync()
        with writer.lock:
            if writer.error is not None:
                raise writer.error
            if choose is None and writer.tail > FILE_HEADER_SIZE:
                writer.roll_over()
            # Read the clock first: every key expired by ``now`` then leaves the index.
            now = self.clock()
            keyspace.drop_expired(now)
            sealed = dict(writer.sealed_sizes)
            if choose is not None:
                inputs = sorted(set(choose(sealed)) & sealed.keys())
            elif any(keyspace.dead_bytes(i) for i in sealed):
                inputs = sorted(sealed)
            else:
                inputs = []
            maps = {i: writer.maps[i] for i in sealed}
        if not inputs:
            return None
        outside = [self._first_seq(i, maps[i], sealed[i]) for i in sealed if i not in inputs]
        return _Plan(
            inputs,
            {i: maps[i] for i in inputs},
            {i: sealed[i] for i in inputs},
            min(outside, default=math.inf),
            now,
        )

    def select(self, sealed: dict[int, int]) -> list[int]:
        """The sealed segments automatic compaction should rewrite now, if any (lock held).

        Kept tombstones count as dead bytes but compacting their segment alone
        would keep them again, so they do not count towards choosing it.
        """
        chosen = []
        reclaimable = 0
        for segment_id, size in sealed.items():
            compacted = self.manifest.segments.get(segment_id)
            gain = self.keyspace.dead_bytes(segment_id) - (
                compacted.tombstone_bytes if compacted else 0
            )
            if gain > 0 and gain >= self.options.ratio * size:
                chosen.append(segment_id)
                reclaimable += gain
        return sorted(chosen) if chosen and reclaimable >= self.options.min_bytes else []

    def _first_seq(self, segment_id: int, mapping: Mapping, size: int) -> float:
        """The lowest sequence number in a sealed segment (inf if it holds no record).

        A log segment is written in sequence order, so that is its first
        record's; a compacted segment's is in the manifest. A first record that
        does not parse counts as 0: it could hold anything.
        """
        compacted = self.manifest.segments.get(segment_id)
        if compacted is not None:
            return compacted.min_seq if compacted.size > FILE_HEADER_SIZE else math.inf
        if size <= FILE_HEADER_SIZE:
            return math.inf
        head = mapping[FILE_HEADER_SIZE : FILE_HEADER_SIZE + HEADER_SIZE]
        if len(head) < HEADER_SIZE:
            return 0
        key_len, value_len = _LENGTHS.unpack_from(head, HEADER_SIZE - _LENGTHS.size)
        end = min(FILE_HEADER_SIZE + HEADER_SIZE + key_len + value_len, size)
        parsed = parse_record(mapping[FILE_HEADER_SIZE:end], 0)
        return parsed[1] if parsed is not None else 0

    def _rewrite(self, rewrite: _Rewrite) -> None:
        """Step 2: scan the inputs, write and fsync the outputs and hints and the directory."""
        if not self._manifest_on_disk:
            # Before the first output: an output without a manifest then means a lost one.
            if not self.fs.exists(os.path.join(self.directory, MANIFEST)):
                commit_manifest(self.fs, self.directory, self.manifest)
            self._manifest_on_disk = True
        plan = rewrite.plan
        mode = self.recovery
        for segment_id in plan.inputs:
            self.check_stopping()
            name = segment_name(segment_id)
            rewrite.data = plan.maps[segment_id][0 : plan.sizes[segment_id]]
            replay_segment(rewrite, segment_id, rewrite.data, name, False, mode, RecoveryReport())
        rewrite.data = b""
        rewrite.finish()
        self.check_stopping()
        if rewrite.outputs:
            self.fs.fsync_dir(self.directory)

    def _abandon(self, outputs: list[_Output]) -> None:
        """Remove the files of a compaction that will not commit (best effort: open cleans up)."""
        for output in outputs:
            with contextlib.suppress(Exception):
                output.handle.close()
            for name in (segment_name(output.segment_id), hint_name(output.segment_id)):
                path = os.path.join(self.directory, name)
                with contextlib.suppress(Exception):
                    if self.fs.exists(path):
                        self.fs.unlink(path)
        if outputs:
            with contextlib.suppress(Exception):
                self.fs.fsync_dir(self.directory)

    def _commit(self, plan: _Plan, rewrite: _Rewrite) -> None:
        """Step 3: replace the manifest; from here on the outputs are the store's."""
        inputs = set(plan.inputs)
        segments = {i: s for i, s in self.manifest.segments.items() if i not in inputs}
        for output in rewrite.outputs:
            segments[output.segment_id] = CompactedSegment(
                output.segment_id, output.size, output.min_seq, output.tombstone_bytes
            )
        dropped = [segment_name(i) for i in plan.inputs]
        dropped += [hint_name(i) for i in plan.inputs if i >= COMPACTED_BASE]
        manifest = Manifest(segments, rewrite.next_id - COMPACTED_BASE, tuple(dropped))
        try:
            commit_manifest(self.fs, self.directory, manifest)
        except OSError as exc:
            raise self.writer.fail("committing a compaction", exc) from exc
        self.manifest = manifest

    def _install(self, rewrite: _Rewrite) -> None:
        """Step 4: map the outputs and point the index at them, a slice of keys at a time."""
        writer = self.writer
        keyspace = self.keyspace
        with writer.lock:
            if writer.error is not None:
                raise writer.error
            for output in rewrite.outputs:
                try:
                    writer.open_sealed(output.segment_id, output.size)
                except OSError as exc:
                    raise writer.fail("mapping a compacted segment", exc) from exc
                keyspace.add_segment(output.segment_id, output.tombstone_bytes)
        move = keyspace.move
        for output in rewrite.outputs:
            moves = list(zip(output.hint.keys, output.sources, output.locations(), strict=True))
            for start in range(0, len(moves), INSTALL_SLICE):
                with writer.lock:
                    if writer.error is not None:
                        raise writer.error
                    for key, source, location in moves[start : start + INSTALL_SLICE]:
                        if source and not move(key, source, location):
                            rewrite.report.lost_races += 1

    def _retire(self, plan: _Plan) -> None:
        """Step 5: stop reading the inputs, delete them and fsync the directory.

        A failure here loses nothing: the manifest lists the inputs as dropped
        and the next open deletes whatever is left of them.
        """
        writer = self.writer
        with writer.lock:
            for segment_id in plan.inputs:
                writer.drop_sealed(segment_id)
                self.keyspace.forget_segment(segment_id)
        try:
            for name in self.manifest.dropped:
                path = os.path.join(self.directory, name)
                if self.fs.exists(path):
                    self.fs.unlink(path)
            self.fs.fsync_dir(self.directory)
        except OSError as exc:
            log.error("%s: deleting compacted inputs failed (%s); open will", self.directory, exc)
