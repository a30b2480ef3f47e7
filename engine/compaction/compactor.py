"""The compactor: runs one compaction at a time, in five crash-safe steps, and the thread.

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

Steps 3 to 5 hold a lock of their own, which a checkpoint takes
(``files_held``) so that the files it links are neither replaced nor deleted
under it.

A crash anywhere leaves a state that ``open_manifest`` finishes: before the
commit the outputs are leftovers and the inputs are whole; after it, the
outputs are live and any input still present is deleted. Recovery resolves
what both hold by sequence number, so order of files never matters.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from engine.background import start_polling
from engine.compaction.output import CompactionReport, OutputPlace, OutputSegment, Rewrite
from engine.compaction.policy import Chooser, CompactionOptions, Plan, first_seq, select
from engine.errors import DiskFullError, StorageError, is_disk_full
from engine.format import FILE_HEADER_SIZE
from engine.hints import MAX_SEGMENT_BYTES, hint_name
from engine.keyspace import Keyspace
from engine.loghints import log_hint_name
from engine.manifest import (
    MANIFEST,
    CompactedSegment,
    Manifest,
    commit_manifest,
    open_manifest,
)
from engine.recovery import RecoveryMode, RecoveryReport, replay_segment
from engine.segment import COMPACTED_BASE, segment_name
from engine.writer import SegmentWriter

log = logging.getLogger("seglog.compaction")

#: Keys installed per hold of the write lock: short enough that writers barely wait.
INSTALL_SLICE: Final = 1024


class CancelledError(StorageError):
    """The store is closing: a compaction that had not committed yet was abandoned."""


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
        self.place = OutputPlace(writer.fs, writer.directory, min(segment_size, MAX_SEGMENT_BYTES))
        self.manifest = Manifest()
        self._manifest_on_disk = False
        self.last: CompactionReport | None = None
        self.count = 0
        self._stopping = threading.Event()
        self._running = threading.Lock()
        #: Held from the commit to the deletion of the inputs: ``files_held`` waits for it.
        self._replacing = threading.Lock()
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

    @contextlib.contextmanager
    def files_held(self) -> Iterator[Manifest]:
        """Hold off compactions' commits and deletions meanwhile; yield the committed manifest.

        While held, the manifest and the sealed segments the writer reads are
        the same set of files and none of them is deleted (a checkpoint links
        them). A compaction may go on rewriting; it waits before its commit.
        Take it before the write lock, never inside it.
        """
        with self._replacing:
            yield self.manifest

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
            self._check_room(plan)
            report = CompactionReport(trigger)
            report.segments_in = [segment_name(i) for i in plan.inputs]
            report.bytes_before = sum(plan.sizes.values())
            log.info("%s: compacting %s", self.directory, report.segments_in)
            rewrite = Rewrite(
                plan,
                report,
                self.keyspace,
                self.place,
                self.manifest.next_id(),
                self.check_stopping,
            )
            try:
                self._rewrite(rewrite)
                # Every write that made an input record dead must be durable before
                # the commit allows the inputs to go.
                self.writer.sync()
            except BaseException as exc:
                self._abandon(rewrite.outputs)
                if isinstance(exc, OSError):
                    error = DiskFullError if is_disk_full(exc) else StorageError
                    raise error(f"{self.directory}: compaction failed: {exc}") from exc
                raise
            with self._replacing:
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

    def _plan(self, choose: Chooser | None) -> Plan | None:
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
        manifest = self.manifest
        outside = [first_seq(manifest, i, maps[i], sealed[i]) for i in sealed if i not in inputs]
        return Plan(
            inputs,
            {i: maps[i] for i in inputs},
            {i: sealed[i] for i in inputs},
            min(outside, default=math.inf),
            now,
        )

    def _check_room(self, plan: Plan) -> None:
        """``DiskFullError`` before anything is written if the output cannot fit.

        The output holds the inputs' live records (their bytes less the dead
        ones) and a hint file; a compaction that still runs out of room midway
        abandons its outputs and leaves the store as it was.
        """
        live = sum(plan.sizes[i] - self.keyspace.dead_bytes(i) for i in plan.inputs)
        free = self.writer.fs.free_bytes(self.directory)
        if live > free:
            raise DiskFullError(
                f"{self.directory}: compacting {len(plan.inputs)} segment(s) needs room for "
                f"{live} bytes of live records plus their hints; {free} bytes are free"
            )

    def select(self, sealed: dict[int, int]) -> list[int]:
        """The sealed segments automatic compaction should rewrite now, if any (lock held)."""
        return select(sealed, self.keyspace, self.manifest, self.options)

    def _rewrite(self, rewrite: Rewrite) -> None:
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

    def _abandon(self, outputs: list[OutputSegment]) -> None:
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

    def _commit(self, plan: Plan, rewrite: Rewrite) -> None:
        """Step 3: replace the manifest; from here on the outputs are the store's."""
        inputs = set(plan.inputs)
        segments = {i: s for i, s in self.manifest.segments.items() if i not in inputs}
        for output in rewrite.outputs:
            segments[output.segment_id] = CompactedSegment(
                output.segment_id, output.size, output.min_seq, output.tombstone_bytes
            )
        dropped = [segment_name(i) for i in plan.inputs]
        dropped += [hint_name(i) for i in plan.inputs if i >= COMPACTED_BASE]
        dropped += [log_hint_name(i) for i in plan.inputs if i < COMPACTED_BASE]
        manifest = Manifest(segments, rewrite.next_id - COMPACTED_BASE, tuple(dropped))
        try:
            commit_manifest(self.fs, self.directory, manifest)
        except OSError as exc:
            raise self.writer.fail("committing a compaction", exc) from exc
        self.manifest = manifest

    def _install(self, rewrite: Rewrite) -> None:
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

    def _retire(self, plan: Plan) -> None:
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
