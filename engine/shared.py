"""Several processes writing one store: ``Engine.open(path, shared=True)`` (docs/MULTIPROCESS.md).

A ``SharedEngine`` is a ``Follower`` that also appends. Every append holds the
store's ``APPEND`` lock (threads of one process queue on a thread lock first),
and under it: catches up with the other processes' records, clears what a
process killed in the middle of its append left after them, stores its own
records at the end with ``pwrite``, and applies them by catching up once
more, so its own records and everyone else's reach the index by one path.
A ``pwrite`` rather than a store into a mapping: another process may cut the
file (a rollover, a clean-up) below this process's mapping, and a store there
would be a SIGBUS; a write to a descriptor cannot fault.

Compaction takes the ``COMPACT`` lock (one process at a time; the others skip
their turn) and the others adopt its manifest as readers do
(``engine.compaction.shared``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Final, TypeVar

from engine.background import start_polling
from engine.batch import Batch
from engine.catchup import Tail
from engine.checkpoint import CheckpointReport, Progress, Reuse, refuse_incomplete
from engine.compaction import CompactionOptions, CompactionReport
from engine.compaction.shared import SharedCompactor
from engine.engine import Engine
from engine.errors import (
    CorruptionError,
    DiskFullError,
    StorageError,
    is_disk_full,
    opening_failed,
)
from engine.follower import Follower, shared_fs
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_DELETE,
    BATCH_PUT,
    DELETE,
    FILE_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
    VERSION,
    encode_record,
)
from engine.fs import FileSystem, PositionalHandle, ProcessLock, SharedFileSystem
from engine.keyspace import BatchOp
from engine.location import position
from engine.manifest import open_manifest
from engine.options import EngineOptions
from engine.reader import ScannedRecord, record_at, unwritten
from engine.segment import LOCK_FILE, create_segment, list_segments, segment_name
from engine.writer import INITIAL_MAP_SIZE

log = logging.getLogger("seglog.shared")
T = TypeVar("T")

#: Held for the length of one append, by one process of all that share the store.
APPEND_FILE: Final = "APPEND"
#: Held for the length of one compaction.
COMPACT_FILE: Final = "COMPACT"
#: Bytes after the last record looked at before each append: a record in flight when its
#: writer died shows here (glibc's ``memcpy`` may have stored all but its first 32 bytes).
CLEAN_WINDOW: Final = 256

#: A record to append, with what the index needs of it: (record, type, seq, expiry, key).
Unit = tuple[bytes, int, int, float, bytes]
#: Builds an append's records from the first sequence number it may use; None: write nothing.
Build = Callable[[int], list[Unit] | None]
#: What the 256 bytes after the last record hold when nothing was left there.
_ZEROS: Final = bytes(CLEAN_WINDOW)


def _unit(rtype: int, seq: int, expires: float, key: bytes, value: bytes = b"") -> Unit:
    return encode_record(rtype, seq, expires, key, value), rtype, seq, expires, key


class SharedEngine(Follower):
    """An ``Engine`` that shares its store with other processes, each reading and writing."""

    def __init__(
        self,
        directory: str,
        options: EngineOptions,
        compaction: CompactionOptions,
        fs: SharedFileSystem,
        lock: ProcessLock,
    ) -> None:
        super().__init__(directory, options, fs, lock)
        self._shared_lock = lock
        self._appending = threading.Lock()
        self._append_lock = fs.process_lock(os.path.join(directory, APPEND_FILE))
        self._active_id = -1
        self._active: PositionalHandle | None = None
        self._compactor = SharedCompactor(
            fs.process_lock(os.path.join(directory, COMPACT_FILE)),
            self._prepare_compaction,
            self._writer,
            self._keyspace,
            options.clock,
            segment_size=options.segment_size,
            recovery=options.recovery,
            options=compaction,
        )

    def _follow_tail(self, view: object) -> None:
        super()._follow_tail(view)  # type: ignore[arg-type]
        self._writer.base = position(self._tail.segment_id, 0)

    # ---------------------------------------------------------------- appending

    def put(
        self,
        key: bytes,
        value: bytes,
        *,
        ttl: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        key, value = self._checks.checked(key, value)
        expires = NO_EXPIRY
        if ttl is not None or expires_at is not None:
            expires = self._checks.expiry(ttl, expires_at)
        self._append_units(lambda seq: [_unit(PUT, seq, expires, key, value)])

    def delete(self, key: bytes) -> None:
        key = self._checks.key(key)

        def build(seq: int) -> list[Unit] | None:
            if key not in self._keyspace:
                return None  # as in one process: deleting a missing key writes nothing
            return [_unit(DELETE, seq, NO_EXPIRY, key)]

        self._append_units(build)

    def batch(self) -> Batch:
        return Batch(self._checks, self._commit_shared_batch)

    def _commit_shared_batch(self, ops: list[BatchOp]) -> None:
        if not ops:
            return

        def build(seq: int) -> list[Unit]:
            units = []
            for key, value, expires in ops:
                if value is None:
                    units.append(_unit(BATCH_DELETE, seq, NO_EXPIRY, key))
                else:
                    units.append(_unit(BATCH_PUT, seq, expires, key, value))
                seq += 1
            count = BATCH_COUNT.pack(len(ops))
            units.append(_unit(BATCH_COMMIT, seq, NO_EXPIRY, b"", count))
            return units

        self._append_units(build)

    def _append_units(self, build: Build) -> None:
        """One append: under the append lock, catch up, clear, store, apply; then sync."""
        writer = self._writer
        # ``_follow`` too: a view swapped in meanwhile (another thread adopting a manifest)
        # could already hold the records stored here, and would apply them twice.
        with self._appending, self._append_lock, self._follow:
            if writer.error is not None:
                raise writer.error
            tail = self._ready_to_append()
            units = build(self._seq + 1)
            if not units:
                return
            data = b"".join(unit[0] for unit in units)
            if tail.version != VERSION or (
                tail.known_end + len(data) > writer.segment_size
                and tail.known_end > FILE_HEADER_SIZE
            ):
                # Full, or written by an older seglog: version-2 records go in a version-2 file.
                self._roll_over(tail)
                tail = self._ready_to_append()
            end = position(tail.segment_id, tail.known_end + len(data))
            size = self._store(tail, data)
            records: list[ScannedRecord] = []
            offset = 0
            for record, rtype, seq, expires, key in units:
                records.append((offset, len(record), rtype, seq, expires, key))
                offset += len(record)
            self._view.applied(records, len(data), size, writer.lock, self._clock())
            with writer.lock:
                self._follow_tail(self._view)
        if self._always:
            writer.make_durable(end)

    def _ready_to_append(self) -> Tail:
        """Catch up, recreate a header a killed process left torn, clear its torn append.

        Called with the append lock held: nobody else is storing, so anything
        after the last complete unit is what a process killed in its append
        left behind.
        """
        self._check()
        tail = self._tail
        if tail.known_end == 0:
            # Creating this segment was cut short (its creator was killed): create it again.
            self._guarded(
                "creating a segment",
                lambda: create_segment(self._fs, self.path, tail.segment_id).close(),
            )
            self._refresh()
            tail = self._tail
        self._open_active(tail)
        self._clear_after(tail)
        return tail

    def _open_active(self, tail: Tail) -> None:
        """A descriptor of the followed segment for writing (the writer syncs through it)."""
        if self._active_id == tail.segment_id:
            return
        path = os.path.join(self.path, segment_name(tail.segment_id))
        handle = self._guarded("opening a segment", lambda: self._fs.open_writing(path))
        writer = self._writer
        with writer.sync_lock:
            # The previous segment was sealed (fsynced) by whoever rolled over.
            if writer.active is not None:
                writer.active.close()
            writer.active = handle
        self._active_id, self._active = tail.segment_id, handle

    def _writing(self) -> PositionalHandle:
        """The followed segment opened for writing (``_open_active`` first)."""
        assert self._active is not None
        return self._active

    def _clear_after(self, tail: Tail) -> None:
        """Zero what a killed process's append left after ``tail`` (append lock held).

        Its bytes are a torn record or a batch without its commit: nobody has
        shown them, and a record stored after them would make them damage
        followed by valid records. Valid records after bytes that were written
        (not a power cut's unwritten sector) are corruption: refused, as
        recovery refuses them.
        """
        file = self._writing()
        start = tail.known_end
        window = file.pread(CLEAN_WINDOW, start)
        if window == _ZEROS[: len(window)]:
            return
        size = file.size()
        data = file.pread(size - start, start)
        offset = 0
        while (record := record_at(data, offset)) is not None:
            offset += record[1]
            # Its sequence numbers count as used: a reader that read them sees new ones.
            self._view.seq = max(self._view.seq, record[3])
        # A valid record starts before the last non-zero byte (its header is not zeros);
        # a power cut's unwritten sector before it is not damage (``unwritten``).
        written = len(data.rstrip(b"\0"))
        resume = next((o for o in range(offset + 1, written) if record_at(data, o)), None)
        name = segment_name(tail.segment_id)
        if resume is not None and not unwritten(data, offset, resume):
            raise CorruptionError(
                f"{name}: damaged record at offset {start + offset} (followed by valid "
                "records); open the store alone with another recovery mode to salvage it"
            )

        def clear() -> None:
            file.truncate(start)
            file.allocate(size)
            file.fsync()  # cut durably before anything is stored after it, as recovery does

        self._guarded("clearing a torn append", clear)
        self._seq = self._view.seq
        log.warning("%s: cleared %d bytes a killed append left at offset %d", name, written, start)

    def _roll_over(self, tail: Tail) -> None:
        """Seal the followed segment (durable, cut to its records) and create the next one."""
        file = self._writing()

        def seal() -> None:
            file.fsync()
            file.truncate(tail.known_end)
            file.fsync()
            create_segment(self._fs, self.path, tail.segment_id + 1).close()

        self._guarded("rolling over", seal)
        self._writer.fsyncs += 4

    def _store(self, tail: Tail, data: bytes) -> int:
        """Write ``data`` after the last record, reserving the file ahead in zeros.

        Returns the file's size.
        """
        file = self._writing()
        start = tail.known_end
        end = start + len(data)
        size = tail.size  # checked under the append lock: nobody else changes the file
        if end > size:
            reserve = max(end, min(max(2 * size, INITIAL_MAP_SIZE), self._writer.segment_size))
            try:
                file.allocate(reserve)
            except OSError as exc:
                if not is_disk_full(exc):
                    raise self._writer.fail("growing a segment", exc) from exc
                try:
                    file.allocate(end)
                    reserve = end
                except OSError as again:
                    raise DiskFullError(
                        f"{self.path}: no room on the disk for {len(data)} more bytes of "
                        f"{segment_name(tail.segment_id)} ({again}); nothing was written"
                    ) from again
            size = reserve
        self._guarded("writing", lambda: _write_at(file, data, start))
        return size

    def _guarded(self, what: str, step: Callable[[], T]) -> T:
        """Run a step that writes; an OSError fails this engine (the others carry on)."""
        try:
            return step()
        except OSError as exc:
            raise self._writer.fail(what, exc) from exc

    # -------------------------------------------------------------- compaction

    def compact(self) -> CompactionReport:
        return Engine.compact(self)

    def _prepare_compaction(self, roll: bool) -> None:
        """Compaction lock held: seal the active segment if asked, adopt the newest manifest."""
        with self._appending, self._append_lock:
            tail = self._ready_to_append()
            if roll and tail.known_end > FILE_HEADER_SIZE:
                self._roll_over(tail)
                self._ready_to_append()
        self._refresh(adopt=True)
        compactor = self._compactor
        compactor.keyspace = self._keyspace
        compactor.manifest = open_manifest(self._fs, self.path)

    # ----------------------------------------------------------------- the rest

    def sync(self) -> None:
        Engine.sync(self)

    def checkpoint(
        self,
        dest: str | os.PathLike[str],
        *,
        link: bool = True,
        reuse: Reuse | None = None,
        progress: Progress | None = None,
    ) -> CheckpointReport:
        raise StorageError(
            f"{self.path}: checkpoints of a store opened shared=True are not supported; "
            "run `seglog backup` with every process closed, or open it alone"
        )

    def _cut_reserve(self) -> None:
        """The last process to close cuts the active segment to its records, as an owner does.

        Otherwise ``absolute_consistency`` would find the zeros reserved ahead.
        Anything but zeros after the records is left for the next writer to judge.
        """
        with self._appending, self._append_lock:
            self._refresh()
            tail = self._tail
            if tail.known_end == 0:
                return
            self._open_active(tail)
            file = self._writing()
            if any(file.pread(CLEAN_WINDOW, tail.known_end)):
                return

            def cut() -> None:
                file.truncate(tail.known_end)
                file.fsync()

            self._guarded("closing", cut)

    def close(self) -> None:
        """Make this process's writes durable and let go of the store; twice is harmless.

        The last of the processes sharing it also cuts the zeros reserved ahead.
        """
        if self.closed:
            return
        self._compactor.shutdown()
        self._stop_syncing.set()
        if self._syncer is not None:
            self._syncer.join()
        writer = self._writer
        failure: StorageError | None = None
        try:
            if writer.error is None:
                writer.sync()
                if self._shared_lock.try_upgrade():
                    self._cut_reserve()
        except StorageError as exc:
            failure = exc
        finally:
            with writer.sync_lock:
                writer.release()
            self._append_lock.close()
            Follower.close(self)
            self._shared_lock.close()
        if failure is not None:
            raise failure


def _write_at(file: PositionalHandle, data: bytes, offset: int) -> None:
    """Write all of ``data`` at ``offset``, going on after a short write."""
    while data:
        written = file.write_at(data, offset)
        data, offset = data[written:], offset + written


def open_shared(
    directory: str, options: EngineOptions, compaction: CompactionOptions, fs: FileSystem | None
) -> SharedEngine:
    """``Engine.open(directory, shared=True)``: one of several processes writing the store."""
    filesystem = shared_fs(fs, "shared=True")
    try:
        filesystem.makedirs(directory)
        lock = filesystem.process_lock(os.path.join(directory, LOCK_FILE))
    except OSError as exc:
        raise opening_failed(directory, exc) from exc
    try:
        lock.hold_shared()
        _prepare_directory(filesystem, directory)
        engine = SharedEngine(directory, options, compaction, filesystem, lock)
    except BaseException as exc:
        lock.close()
        if isinstance(exc, OSError):
            raise opening_failed(directory, exc) from exc
        raise
    if options.sync == "periodic":
        engine._syncer = start_polling(
            engine,
            Engine._sync_new_writes,
            engine._stop_syncing,
            options.sync_interval,
            f"seglog-sync {directory}",
        )
    engine._compactor.start()
    return engine


def _prepare_directory(fs: SharedFileSystem, directory: str) -> None:
    """Create the first segment of a new store; finish a compaction a killed process left."""
    refuse_incomplete(fs, directory)
    append_lock = fs.process_lock(os.path.join(directory, APPEND_FILE))
    try:
        with append_lock:
            if not list_segments(fs, directory):
                create_segment(fs, directory, 1).close()
    finally:
        append_lock.close()
    compact_lock = fs.process_lock(os.path.join(directory, COMPACT_FILE))
    try:
        if compact_lock.try_acquire():
            open_manifest(fs, directory)  # deletes leftovers: nobody is compacting
    finally:
        compact_lock.close()
