"""The segment writer: appends to the active segment, rolls over, and makes bytes durable.

Records are stored into a shared memory mapping of the active segment. A
store into a shared mapping puts the bytes in the kernel's page cache at once,
like ``write()`` does, so a process crash cannot lose them; it costs a memory
copy instead of a system call (about a tenth of the time, measured in
docs/DESIGN-NOTES.md). The file grows in steps reserved with
``posix_fallocate``, so a full disk is an OSError at a step, never a SIGBUS.
Reads of every segment go through mappings too.

Positions are one int across segments (``engine.location.position``), so "how
far has the log been written / fsynced" is one comparison even across a
rollover. ``append`` is the put hot path: its common case (``tail + size <=
limit``) is one store into the mapping; growing the file, rolling over and
errors take ``_make_room`` first. A batch is ``append_all``: one unit, one
store per record, in order (a process killed mid-``memcpy`` may have stored
its last bytes but not its first). ``limit`` is -1 once the writer has failed or
closed, which sends every append to the slow path and its error.

``make_durable(pos)`` returns once the log is fsynced up to ``pos``. One
waiting writer at a time (the leader) fsyncs everything written so far; the
others sleep until an fsync covers them, so one fsync serves many writers:
that is group commit.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Final

from engine.errors import ClosedError, DiskFullError, FailedError, StorageError, is_disk_full
from engine.format import FILE_HEADER_SIZE
from engine.fs import FileHandle, FileSystem, Mapping
from engine.location import position
from engine.segment import check_segment_header, create_segment, segment_name

log = logging.getLogger("seglog.writer")

#: The active segment's file and mapping start this large and double up to the segment size.
INITIAL_MAP_SIZE: Final = 1 << 20
#: On a full disk a reservation is halved towards the bytes needed; below this much extra
#: it asks for exactly what is needed.
SMALLEST_EXTRA: Final = 4096


class SegmentWriter:
    """The active segment, and mappings of every segment for reads."""

    def __init__(self, fs: FileSystem, directory: str, *, segment_size: int) -> None:
        self.fs = fs
        self.directory = directory
        self.segment_size = segment_size
        #: Mappings by segment id, for reads: ``maps[id][offset : offset + size]``.
        self.maps: dict[int, Mapping] = {}
        self.handles: dict[int, FileHandle] = {}
        self.sealed_sizes: dict[int, int] = {}
        self.active_id = 0
        self.active: FileHandle | None = None
        self.map: Mapping | None = None
        self.base = 0
        self.tail = 0
        self.limit = -1
        self.synced = 0
        self.fsyncs = 0
        self.error: StorageError | None = None
        self.lock = threading.Lock()
        self.sync_lock = threading.Lock()
        #: Guards ``syncing`` and ``waiters``: who leads the next fsync and who waits for it.
        self.group_lock = threading.Lock()
        self.syncing = False
        #: Writers waiting for a leader's fsync: the position each needs, and the lock it sleeps on.
        self.waiters: list[tuple[int, threading.Lock]] = []
        #: The wake lock of the waiter offered the lead, until it takes or passes it on.
        self.offered_lead: threading.Lock | None = None

    @property
    def pos(self) -> int:
        """The log position written so far."""
        return self.base | self.tail

    # --------------------------------------------------------------- segments

    def open_sealed(self, segment_id: int, size: int) -> None:
        """Map an existing, already repaired segment for reads."""
        handle = self.fs.open(os.path.join(self.directory, segment_name(segment_id)))
        self.handles[segment_id] = handle
        self.maps[segment_id] = handle.map(writable=False)
        self.sealed_sizes[segment_id] = size

    def drop_sealed(self, segment_id: int) -> None:
        """Stop reading a sealed segment that compaction replaced (lock held).

        The handle is closed but the mapping only dereferenced, never closed: a
        scan in flight holds its own reference and keeps reading it; the pages
        are unmapped, and the deleted file's space freed, when the last goes.
        """
        self.maps.pop(segment_id, None)
        self.sealed_sizes.pop(segment_id, None)
        handle = self.handles.pop(segment_id, None)
        if handle is not None:
            handle.close()

    def version(self, segment_id: int) -> int:
        """The format version of opened segment ``segment_id``, from its header."""
        return check_segment_header(
            bytes(self.maps[segment_id][:FILE_HEADER_SIZE]), segment_name(segment_id)
        )

    def resume(self, segment_id: int) -> None:
        """Make an opened segment the active one again, appending after its records."""
        size = self.sealed_sizes.pop(segment_id)
        self.maps.pop(segment_id).close()
        self._activate(segment_id, self.handles[segment_id], size)

    def start(self, segment_id: int) -> None:
        """Create a new segment (header and directory entry durable) and append to it."""
        try:
            handle = create_segment(self.fs, self.directory, segment_id)
        except OSError as exc:
            raise self.fail("creating a segment", exc) from exc
        self.fsyncs += 2
        self.handles[segment_id] = handle
        self._activate(segment_id, handle, FILE_HEADER_SIZE)

    def _activate(self, segment_id: int, handle: FileHandle, size: int) -> None:
        try:
            try:
                handle.allocate(max(min(INITIAL_MAP_SIZE, self.segment_size), size))
            except OSError as exc:
                if not is_disk_full(exc):
                    raise
                # A full disk: start from what the file holds; appends reserve more later.
                log.warning("%s: no room to reserve a segment ahead (%s)", self.directory, exc)
            mapping = handle.map(writable=True)
        except OSError as exc:
            raise self.fail("mapping a segment", exc) from exc
        self.active_id = segment_id
        self.active = handle
        self.map = self.maps[segment_id] = mapping
        self.base = position(segment_id, 0)
        self.tail = size
        self.limit = min(len(mapping), self.segment_size)
        self.synced = self.pos

    def segment_sizes(self) -> dict[int, int]:
        """Bytes of records (and header) in every segment, the active one included."""
        sizes = dict(self.sealed_sizes)
        sizes[self.active_id] = self.tail
        return sizes

    # ---------------------------------------------------------------- appends

    def append(self, record: bytes) -> int:
        """Append ``record`` (lock held) and return its position."""
        tail = self.tail
        size = len(record)
        if tail + size <= self.limit:
            self.map[tail : tail + size] = record  # type: ignore[index]
            self.tail = tail + size
            return self.base | tail
        return self._append_slowly(record)

    def _append_slowly(self, record: bytes) -> int:
        """``append`` when the record does not fit the mapping, or the writer has failed."""
        size = len(record)
        self._make_room(size)
        tail = self.tail
        self.map[tail : tail + size] = record  # type: ignore[index]
        self.tail = tail + size
        return self.base | tail

    def append_all(self, records: list[bytes], size: int) -> int:
        """Append ``records`` (``size`` bytes in all) as one unit in one segment (lock held).

        Each record is its own store, in order. One store of them all would be
        one ``memcpy``, and ``memcpy`` does not fill memory in order: glibc's
        copies of more than 256 bytes store their first 32 bytes last. A process
        killed during it could leave the later records whole behind a torn first
        one, damage followed by valid records, which recovery refuses. Stored
        one by one, only the record in flight can be torn, and nothing follows it.
        Returns the first record's position.
        """
        if self.tail + size > self.limit:
            self._make_room(size)
        mapping = self.map
        assert mapping is not None
        start = tail = self.tail
        for record in records:
            end = tail + len(record)
            mapping[tail:end] = record
            tail = end
        self.tail = tail
        return self.base | start

    def _make_room(self, size: int) -> None:
        """Roll over or grow the mapping so that ``size`` more bytes fit, or raise."""
        if self.error is not None:
            raise self.error
        if self.tail + size > self.segment_size and self.tail > FILE_HEADER_SIZE:
            self.roll_over()
        assert self.map is not None
        if self.tail + size > len(self.map):
            self._grow(self.tail + size)

    def _grow(self, needed: int) -> None:
        """Reserve more of the active segment and widen its mapping.

        Asks for double the mapping; on a full disk for half as much more each
        time, down to exactly ``needed``. If even that does not fit, nothing was
        written: ``DiskFullError``, and the writer carries on (the next append
        tries again). Any other failure fails the writer.
        """
        assert self.active is not None and self.map is not None
        size = max(min(len(self.map) * 2, self.segment_size), needed)
        while True:
            try:
                self.active.allocate(size)
                break
            except OSError as exc:
                if not is_disk_full(exc):
                    raise self.fail("growing a segment", exc) from exc
                if size <= needed:
                    raise DiskFullError(
                        f"{self.directory}: no room on the disk for {needed - len(self.map)} "
                        f"more bytes of {segment_name(self.active_id)} ({exc}); nothing was "
                        "written, and writes succeed again once space is freed"
                    ) from exc
                extra = size - needed
                size = needed + extra // 2 if extra > SMALLEST_EXTRA else needed
        try:
            self.map.resize(size)
        except OSError as exc:
            raise self.fail("growing a segment's mapping", exc) from exc
        self.limit = min(size, self.segment_size)

    def roll_over(self) -> None:
        """Seal the active segment, durable and cut to its records, then start the next."""
        assert self.active is not None
        with self.sync_lock:
            self._fsync_active()
            try:
                self.active.truncate(self.tail)
                self.active.fsync()
            except OSError as exc:
                raise self.fail("sealing a segment", exc) from exc
            self.fsyncs += 1
            self.synced = self.pos
        self.sealed_sizes[self.active_id] = self.tail
        self.start(self.active_id + 1)
        log.debug("%s: rolled over to %s", self.directory, segment_name(self.active_id))

    # ------------------------------------------------------------- durability

    def make_durable(self, pos: int) -> None:
        """Return once everything up to ``pos`` is fsynced, sharing fsyncs between threads.

        The first waiter becomes the leader and fsyncs everything appended so
        far; the others sleep until a leader's fsync covers them (group
        commit). Each sleeps on its own lock, so a finished fsync wakes exactly
        the writers it covered, and each wakes without contending for a shared
        lock: a ``Condition.notify_all`` made every woken writer queue for the
        condition's lock in turn, and that queue, not the disk, set the pace.
        """
        with self.group_lock:
            if self.error is not None:
                raise self.error
            if self.synced >= pos:
                return
            wake = self._join(pos)
        while wake is not None:
            try:
                wake.acquire()  # released by a leader: covered, failed, or offered the lead
            except BaseException:  # KeyboardInterrupt, say: give up this writer's place first
                self._abandon(wake)
                raise
            if self.offered_lead is not wake:
                break
            # Offered the lead. Whoever comes first leads, so another writer may have
            # taken it meanwhile, a rollover may have made ``pos`` durable, or the store
            # may have failed: in every case the offer is settled here, so no waiter is
            # ever left asleep without a leader.
            with self.group_lock:
                self.offered_lead = None
                if self.error is not None or self.synced >= pos:
                    self._wake_waiters()
                    break
                wake = self._join(pos)
        else:  # no break: this thread leads
            self._lead_fsync()
        if self.synced < pos:
            raise self.error or FailedError(f"{self.directory}: fsync did not cover the write")

    def _join(self, pos: int) -> threading.Lock | None:
        """Lead the next fsync (None) or queue behind the leader (group lock held).

        Queued, the writer gets the lock to sleep on until a leader releases it.
        """
        if not self.syncing:
            self.syncing = True
            return None
        wake = threading.Lock()
        wake.acquire()
        self.waiters.append((pos, wake))
        return wake

    def _abandon(self, wake: threading.Lock) -> None:
        """Take a waiter out of the group; if it had been offered the lead, pass it on."""
        with self.group_lock:
            self.waiters = [waiter for waiter in self.waiters if waiter[1] is not wake]
            if self.offered_lead is wake:
                self.offered_lead = None
                self._wake_waiters()

    def _lead_fsync(self) -> None:
        """fsync everything appended so far, then wake the writers it covered."""
        target = 0
        try:
            target = self._locked_pos()
            with self.sync_lock:
                self._fsync_active()
        finally:
            with self.group_lock:
                self.syncing = False
                if self.error is None:
                    self.synced = max(self.synced, target)
                self._wake_waiters()

    def _wake_waiters(self) -> None:
        """Wake the waiters now durable (all, to raise, if the store failed) (group lock held).

        If some are left and nobody leads, the first is offered the lead, so
        the disk never sits idle while writers wait. It is only offered: a
        writer arriving first may lead instead.
        """
        failed = self.error is not None
        still_waiting = []
        for waiter in self.waiters:
            if failed or waiter[0] <= self.synced:
                waiter[1].release()
            else:
                still_waiting.append(waiter)
        if still_waiting and not self.syncing and self.offered_lead is None:
            self.offered_lead = still_waiting.pop(0)[1]
            self.offered_lead.release()
        self.waiters = still_waiting

    def _locked_pos(self) -> int:
        """``pos``, read under the write lock: a rollover changes ``base`` and ``tail`` apart."""
        with self.lock:
            return self.base | self.tail

    def sync(self) -> None:
        """fsync everything appended so far (``make_durable`` raises the writer's error)."""
        self.make_durable(self._locked_pos())

    def _fsync_active(self) -> None:
        """fsync the active segment (sync lock held); an error fails the writer.

        On Linux, fsync writes back the pages stored into through the shared
        mapping: they are the file's own page-cache pages. No msync: CPython
        runs it without releasing the GIL, which would stall every other
        thread for the whole flush and defeat group commit.
        """
        if self.active is None:
            return
        try:
            self.active.fsync()
        except OSError as exc:
            raise self.fail("fsync", exc) from exc
        self.fsyncs += 1

    def fail(self, what: str, exc: OSError) -> FailedError:
        """Refuse all further work: after a failed write or fsync only a reopen is safe.

        Retrying a failed fsync can report success while the data is lost (the
        "fsyncgate" lesson), so the error sticks until the store is reopened.
        """
        error = FailedError(f"{self.directory}: {what} failed ({exc}); reopen the store")
        if self.error is None or isinstance(self.error, ClosedError):
            self.error = error
        self.limit = -1
        self.maps.clear()
        log.error("%s", error)
        return error

    # ---------------------------------------------------------------- closing

    def close(self) -> None:
        """fsync (unless failed), cut the active segment to its records, unmap and close."""
        with self.lock:
            failure: StorageError | None = None
            if self.error is None and self.active is not None:
                try:
                    with self.sync_lock:
                        self._fsync_active()
                        self.active.truncate(self.tail)
                        self.active.fsync()
                except (StorageError, OSError) as exc:
                    failure = exc if isinstance(exc, StorageError) else self.fail("closing", exc)
            self.error = ClosedError(f"{self.directory}: the store is closed")
            self.release()
        if failure is not None:
            raise failure

    def release(self) -> None:
        """Drop every mapping and handle without syncing."""
        self.limit = -1
        self.maps.clear()
        self.map = None
        for handle in self.handles.values():
            handle.close()
        self.handles.clear()
        self.active = None
