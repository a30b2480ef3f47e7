"""The engine facade: open and recover, put/get/delete/scan, batches, sync, compact, stats, close.

Writers take one lock (the segment writer's); readers take none for ``get``
and hold it only to snapshot a ``scan``. With ``sync="always"`` writers release
the lock before they wait for their fsync, so concurrent writers share one
fsync (group commit). docs/DURABILITY.md says what each sync mode promises.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Final, NamedTuple

from crc32c import crc32c

from engine.background import start_polling
from engine.batch import Batch
from engine.checkpoint import CheckpointReport, Progress, Reuse, refuse_incomplete, take_checkpoint
from engine.checks import WriteChecks, as_bytes, as_limit
from engine.compaction import CompactionOptions, CompactionReport, Compactor
from engine.errors import CorruptionError, StorageError, opening_failed
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_DELETE,
    BATCH_PUT,
    DELETE,
    FILE_HEADER_SIZE,
    KEY_AT,
    NO_EXPIRY,
    PUT,
    SHORT,
    SHORT_LIMIT,
    SHORT_SEQ_LIMIT,
    VERSION,
    decode_value,
    encode_record,
    pack_crc,
    pack_head,
    pack_short,
)
from engine.fs import FileSystem, Lock, Mapping, OSFileSystem
from engine.keyspace import BatchOp, Keyspace
from engine.location import OFFSET_MASK, SEGMENT_SHIFT, SIZE_BITS, SIZE_MASK
from engine.loghints import hint_log_at_close
from engine.mapping import KeyMapping
from engine.options import (
    DEFAULT_MAX_KEY_SIZE,
    DEFAULT_MAX_VALUE_SIZE,
    DEFAULT_SEGMENT_SIZE,
    EngineOptions,
    SyncMode,
)
from engine.recovery import RecoveryMode, RecoveryReport, recover
from engine.segment import COMPACTED_BASE, LOCK_FILE, list_segments, segment_name
from engine.stats import EngineStats, SegmentStats
from engine.writer import SegmentWriter

log = logging.getLogger("seglog.engine")

_pack_crc: Final = pack_crc
_KEY_AT: Final = KEY_AT
_pack_head: Final = pack_head
_pack_short: Final = pack_short
_SHORT_PUT: Final = PUT | SHORT
_SHORT_DELETE: Final = DELETE | SHORT
_SHORT_BATCH_PUT: Final = BATCH_PUT | SHORT


class Internals(NamedTuple):
    """The layers behind an ``Engine``: the documented seam for tests and tools.

    Tests that exercise one layer through a real store (the writer's group
    commit under concurrent puts, a partial compaction) reach it here instead
    of through private names. Applications have no use for it: everything
    they need is a method of ``Engine``.
    """

    writer: SegmentWriter
    keyspace: Keyspace
    compactor: Compactor


class Engine(KeyMapping):
    """An open store directory. Create it with ``Engine.open``; safe to share between threads.

    Also ``db[key]``, ``db[key] = value``, ``del db[key]`` and ``iter(db)`` (``engine.mapping``).
    """

    def __init__(
        self,
        directory: str,
        fs: FileSystem,
        lock: Lock,
        options: EngineOptions,
        compaction: CompactionOptions | None = None,
    ) -> None:
        self.path = directory
        self._options = options
        self._owner_lock: Lock | None = lock
        self._clock = options.clock
        self._checks = WriteChecks(options.max_key_size, options.max_value_size, options.clock)
        self._max_key_size = options.max_key_size
        self._max_value_size = options.max_value_size
        self._always = options.sync == "always"
        self._writer = SegmentWriter(fs, directory, segment_size=options.segment_size)
        self._acquire = self._writer.lock.acquire
        self._release = self._writer.lock.release
        self._append = self._writer.append
        self._maps = self._writer.maps
        self._keyspace = Keyspace()
        self._bind_keyspace()
        self._seq = self._seq_at_open = 0
        self._recovery = RecoveryReport()
        self._stop_syncing = threading.Event()
        self._syncer: threading.Thread | None = None
        self._compactor = Compactor(
            self._writer,
            self._keyspace,
            options.clock,
            segment_size=options.segment_size,
            recovery=options.recovery,
            options=compaction or CompactionOptions(),
        )

    def _bind_keyspace(self) -> None:
        """Local names for the keyspace's read-only dicts and its put: the hot paths use them."""
        self._locations = self._keyspace.locations
        self._expiry_times = self._keyspace.times
        self._index_put = self._keyspace.put
        self._index_delete = self._keyspace.delete

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        sync: SyncMode = "periodic",
        sync_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        segment_size: int = DEFAULT_SEGMENT_SIZE,
        max_key_size: int = DEFAULT_MAX_KEY_SIZE,
        max_value_size: int = DEFAULT_MAX_VALUE_SIZE,
        recovery: RecoveryMode = "tolerate_corrupted_tail",
        fs: FileSystem | None = None,
        auto_compact: bool = True,
        compact_ratio: float = 0.5,
        compact_min_bytes: int = 16 << 20,
        compact_interval: float = 1.0,
        readonly: bool = False,
        shared: bool = False,
    ) -> Engine:
        """Open (creating if needed) the store in directory ``path`` and recover it.

        ``auto_compact`` runs compaction in a background thread on the sealed
        segments whose dead share of bytes reaches ``compact_ratio``, once they
        hold ``compact_min_bytes`` of dead data, checking every
        ``compact_interval`` seconds (see ``engine.compaction``).

        ``readonly`` opens a store that another process may own, without its
        lock and writing nothing: reads catch up with that process's writes,
        writes raise ReadOnlyError (``engine.follower``, docs/MULTIPROCESS.md).
        ``shared`` opens it as one of several processes that read and write it
        at once, each with ``shared=True`` (``engine.shared``).

        Raises LockedError if another process or handle owns the directory, and
        CorruptionError if it finds more damage than ``recovery`` accepts.
        """
        compaction = CompactionOptions(
            auto=auto_compact,
            ratio=compact_ratio,
            min_bytes=compact_min_bytes,
            interval=compact_interval,
        )
        options = EngineOptions(
            sync=sync,
            sync_interval=sync_interval,
            clock=clock,
            segment_size=segment_size,
            max_key_size=max_key_size,
            max_value_size=max_value_size,
            recovery=recovery,
        )
        directory = os.fspath(path)
        if readonly and shared:
            raise ValueError("readonly=True and shared=True exclude each other")
        if readonly:
            from engine.follower import open_follower  # it subclasses Engine

            return open_follower(directory, options, fs)
        if shared:
            from engine.shared import open_shared  # it subclasses Engine

            return open_shared(directory, options, compaction, fs)
        filesystem: FileSystem = fs if fs is not None else OSFileSystem()
        try:
            filesystem.makedirs(directory)
            lock = filesystem.lock(os.path.join(directory, LOCK_FILE))
        except OSError as exc:
            raise opening_failed(directory, exc) from exc
        engine = cls(directory, filesystem, lock, options, compaction)
        try:
            engine._recover()
        except BaseException as exc:
            engine._writer.release()
            lock.release()
            if isinstance(exc, OSError):
                raise opening_failed(directory, exc) from exc
            raise
        if sync == "periodic":
            engine._syncer = start_polling(
                engine,
                Engine._sync_new_writes,
                engine._stop_syncing,
                engine._options.sync_interval,
                f"seglog-sync {directory}",
            )
        engine._compactor.start()
        return engine

    def _recover(self) -> None:
        """Rebuild the index from disk and reopen the newest segment for appending."""
        started = time.perf_counter()
        writer = self._writer
        refuse_incomplete(writer.fs, self.path)
        compacted = self._compactor.open_directory()
        ids = list_segments(writer.fs, self.path)
        state = recover(
            writer.fs,
            self.path,
            ids,
            compacted=compacted,
            mode=self._options.recovery,
            now=self._clock(),
        )
        self._keyspace.restore(state.index, state.expiry, state.dead_bytes)
        self._bind_keyspace()
        self._seq = self._seq_at_open = state.max_seq
        self._recovery = state.report
        ids = sorted(state.segment_sizes)
        for segment_id in ids:
            if state.segment_sizes[segment_id] >= FILE_HEADER_SIZE:
                writer.open_sealed(segment_id, state.segment_sizes[segment_id])
        # Compaction outputs are never active: the newest log segment is.
        logs = [i for i in ids if i < COMPACTED_BASE]
        newest = logs[-1] if logs else 0
        newest_size = state.segment_sizes.get(newest, 0)
        if (
            logs
            and FILE_HEADER_SIZE <= newest_size < self._options.segment_size
            and writer.version(newest) == VERSION  # an older seglog's segment is left sealed
        ):
            writer.resume(newest)
        else:
            writer.start(newest + 1 if newest_size >= FILE_HEADER_SIZE else max(newest, 1))
        log.info(
            "opened %s: %d keys, %d records in %d segments, in %.3fs",
            self.path,
            len(self._keyspace),
            state.report.records,
            len(ids),
            time.perf_counter() - started,
        )

    # ------------------------------------------------------------------ writing

    def put(
        self,
        key: bytes,
        value: bytes,
        *,
        ttl: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Store ``value`` under ``key``, replacing any earlier value and expiry.

        ``ttl`` (seconds from now) or ``expires_at`` (absolute, on the engine's
        clock) make the record expire; ``ttl`` wins if both are given. One that
        has already passed makes the key invisible at once, like a delete.
        """
        if (
            type(key) is not bytes
            or type(value) is not bytes
            or not key
            or len(key) > self._max_key_size
            or len(value) > self._max_value_size
        ):
            key, value = self._checks.checked(key, value)
        if ttl is None and expires_at is None:
            expires = NO_EXPIRY
        else:
            expires = self._checks.expiry(ttl, expires_at)
        # acquire/release rather than ``with``: measurably cheaper on this hot path.
        self._acquire()
        try:
            seq = self._seq = self._seq + 1
            klen, vlen = len(key), len(value)
            if vlen < SHORT_LIMIT and klen < SHORT_LIMIT and seq < SHORT_SEQ_LIMIT and not expires:
                body = _pack_short(_SHORT_PUT, seq, klen, vlen) + key + value
            else:
                body = _pack_head(PUT, seq, expires, klen, vlen) + key + value
            record = _pack_crc(crc32c(body)) + body
            location = self._append(record) << SIZE_BITS | len(record)
            if expires == NO_EXPIRY:
                self._index_put(key, location)
            else:
                self._keyspace.put_expiring(key, location, expires, self._clock())
            durable = self._writer.pos if self._always else 0
        finally:
            self._release()
        if durable:
            self._writer.make_durable(durable)

    def delete(self, key: bytes) -> None:
        """Remove ``key``; removing a missing key is not an error and writes nothing.

        Framed inline with local names like ``put``: it was 25 Python calls a
        delete (DESIGN-NOTES, "Deletes").
        """
        if type(key) is not bytes or not key or len(key) > self._max_key_size:
            key = self._checks.key(key)
        writer = self._writer
        self._acquire()
        try:
            if writer.error is not None:
                raise writer.error
            if key not in self._locations:
                return
            seq = self._seq = self._seq + 1
            if len(key) < SHORT_LIMIT and seq < SHORT_SEQ_LIMIT:
                body = _pack_short(_SHORT_DELETE, seq, len(key), 0) + key
            else:
                body = _pack_head(DELETE, seq, NO_EXPIRY, len(key), 0) + key
            record = _pack_crc(crc32c(body)) + body
            self._index_delete(key, self._append(record) << SIZE_BITS | len(record))
            durable = writer.pos if self._always else 0
        finally:
            self._release()
        if durable:
            writer.make_durable(durable)

    def batch(self) -> Batch:
        """Puts and deletes applied all or nothing, in order: ``with db.batch() as b: ...``."""
        return Batch(self._checks, self._commit_batch)

    def _commit_batch(self, ops: list[BatchOp]) -> None:
        """Write a batch as one unit ending in a commit marker, then index it.

        The loops are written out with local names: a batch's point is to cost
        far less per record than a put.
        """
        if not ops:
            return
        writer = self._writer
        with writer.lock:
            if writer.error is not None:
                raise writer.error
            records: list[bytes] = []
            append = records.append
            seq = self._seq
            for key, value, expires in ops:
                seq += 1
                if value is None:
                    body = _pack_head(BATCH_DELETE, seq, NO_EXPIRY, len(key), 0) + key
                elif (
                    expires == NO_EXPIRY
                    and len(value) < SHORT_LIMIT
                    and len(key) < SHORT_LIMIT
                    and seq < SHORT_SEQ_LIMIT
                ):
                    body = _pack_short(_SHORT_BATCH_PUT, seq, len(key), len(value)) + key + value
                else:
                    body = _pack_head(BATCH_PUT, seq, expires, len(key), len(value)) + key + value
                append(_pack_crc(crc32c(body)) + body)
            self._seq = seq + 1
            count = BATCH_COUNT.pack(len(ops))
            append(encode_record(BATCH_COMMIT, self._seq, NO_EXPIRY, b"", count))
            sizes = [len(r) for r in records]
            pos = writer.append_all(records, sum(sizes))
            self._keyspace.apply_batch(ops, sizes, pos, self._clock())
            durable = writer.pos if self._always else 0
        if durable:
            writer.make_durable(durable)

    # ----------------------------------------------------------------- syncing

    def sync(self) -> None:
        """Make every write that has returned durable: flush and fsync."""
        self._writer.sync()

    def _sync_new_writes(self) -> bool:
        """The ``sync="periodic"`` thread's step: fsync what is new; False if the store failed."""
        try:
            self._writer.sync()  # returns at once if nothing new was written
        except StorageError:
            return False
        return True

    # ----------------------------------------------------------------- reading

    def get(self, key: bytes) -> bytes | None:
        """The value stored under ``key``, or None if it is missing or expired."""
        if type(key) is not bytes or not key:
            key = self._checks.key(key)
        location = self._locations.get(key)
        if location is None:
            if self._writer.error is not None:
                raise self._writer.error
            return None
        if self._expiry_times:
            expires = self._expiry_times.get(key)
            if expires is not None and expires <= self._clock():
                return None
        # _read, inlined: this is the random-read hot path.
        segment_id = location >> SEGMENT_SHIFT
        offset = (location >> SIZE_BITS) & OFFSET_MASK
        try:
            data = self._maps[segment_id][offset : offset + (location & SIZE_MASK)]
        except (KeyError, ValueError) as exc:
            if self._locations.get(key) != location:
                # Compaction moved the record and retired its segment meanwhile: look again.
                return self.get(key)
            raise self._unreadable(segment_id, offset, exc) from exc
        # The key starts after the header, whose size the tag gives (format version 2).
        try:
            if _pack_crc(crc32c(data[4:])) == data[:4]:
                start = _KEY_AT[data[4]]  # IndexError: no tag (4 zero bytes pass the CRC)
                end = start + len(key)
                if data[start:end] == key:
                    return data[end:]
        except IndexError:
            pass
        return self._decode(data, key, segment_id, offset)

    def get_entry(self, key: bytes) -> tuple[bytes, float | None] | None:
        """``(value, expires_at)`` for ``key``; ``expires_at`` is None if it never expires."""
        key = self._checks.key(key)
        with self._writer.lock:
            location, expires = self._keyspace.entry(key)
        if location is None or (expires is not None and expires <= self._clock()):
            return None
        try:
            return self._read(key, location), expires
        except StorageError:
            if self._locations.get(key) == location:
                raise
            # Compaction moved the record and retired its segment meanwhile: look again.
            return self.get_entry(key)

    def _read(self, key: bytes, location: int) -> bytes:
        """Read and check the record at ``location``; it must hold ``key``."""
        segment_id = location >> SEGMENT_SHIFT
        offset = (location >> SIZE_BITS) & OFFSET_MASK
        try:
            data = self._maps[segment_id][offset : offset + (location & SIZE_MASK)]
        except (KeyError, ValueError) as exc:
            raise self._unreadable(segment_id, offset, exc) from exc
        return self._decode(data, key, segment_id, offset)

    def _decode(self, data: bytes, key: bytes, segment_id: int, offset: int) -> bytes:
        """``decode_value`` with the record's place named, and damage logged as it is raised.

        The full check behind every read; ``get`` and ``scan`` reach it only when
        their inlined CRC and key comparison fails, so it raises there.
        """
        try:
            return decode_value(data, key, f"{segment_name(segment_id)} at offset {offset}")
        except CorruptionError as exc:
            log.error("%s: %s", self.path, exc)
            raise

    def _unreadable(self, segment_id: int, offset: int, exc: Exception) -> StorageError:
        if self._writer.error is not None:
            return self._writer.error
        return StorageError(
            f"{self.path}: cannot read {segment_name(segment_id)} at offset {offset}: {exc!r}"
        )

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, bytes | bytearray | memoryview):
            return False
        key = bytes(key)
        if key not in self._keyspace:
            return False
        return not self._keyspace.is_expired(key, self._clock())

    def __len__(self) -> int:
        with self._writer.lock:
            self._keyspace.drop_expired(self._clock())
            return len(self._keyspace)

    def scan(
        self,
        *,
        prefix: bytes = b"",
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[tuple[bytes, bytes]]:
        """``(key, value)`` pairs in key order, as the store was when ``scan`` was called.

        ``start`` is inclusive, ``end`` exclusive, ``prefix`` narrows further;
        ``limit`` stops after that many pairs, and then only that many keys are
        taken from the index (a short range scan costs what it returns, not
        what lies after ``start``). Later writes, deletes and compactions do not
        change what the scan yields.
        """
        keys, locations, maps = self._snapshot(prefix, start, end, reverse, limit)
        return self._values(keys, locations, maps)

    def scan_keys(
        self,
        *,
        prefix: bytes = b"",
        start: bytes | None = None,
        end: bytes | None = None,
        reverse: bool = False,
        limit: int | None = None,
    ) -> Iterator[bytes]:
        """The keys ``scan`` would yield, without reading any value."""
        keys, _locations, _maps = self._snapshot(prefix, start, end, reverse, limit)
        return iter(keys)

    def _snapshot(
        self, prefix: object, start: object, end: object, reverse: bool, limit: object
    ) -> tuple[list[bytes], list[int], dict[int, Mapping]]:
        """The keys and locations a scan will visit, and the readers it will need."""
        low = None if start is None else as_bytes(start, "start")
        high = None if end is None else as_bytes(end, "end")
        narrow = as_bytes(prefix, "prefix")
        most = as_limit(limit)
        writer = self._writer
        with writer.lock:
            if writer.error is not None:
                raise writer.error
            keys, locations = self._keyspace.snapshot(
                low, high, narrow, bool(reverse), self._clock(), most
            )
            return keys, locations, dict(writer.maps)

    def _values(
        self,
        keys: list[bytes],
        locations: list[int],
        maps: dict[int, Mapping],
    ) -> Iterator[tuple[bytes, bytes]]:
        # The same check as get's, inlined: ``_decode`` names the damage on a mismatch.
        for key, location in zip(keys, locations, strict=True):
            segment_id = location >> SEGMENT_SHIFT
            offset = (location >> SIZE_BITS) & OFFSET_MASK
            data = maps[segment_id][offset : offset + (location & SIZE_MASK)]
            if _pack_crc(crc32c(data[4:])) == data[:4] and len(data) > 4:
                start = _KEY_AT[data[4]]
                end = start + len(key)
                if data[start:end] == key:
                    yield key, data[end:]
                    continue
            yield key, self._decode(data, key, segment_id, offset)

    # ------------------------------------------------------------ housekeeping

    def compact(self) -> CompactionReport:
        """Reclaim the space of dead records now; return what was read, written and dropped.

        Rolls the active segment over, so that everything written so far is
        eligible, and rewrites every sealed segment without its overwritten,
        deleted and expired records (see ``engine.compaction``). Reads and
        writes go on meanwhile. With nothing dead, no file is touched and the
        report is empty.
        """
        if self._writer.error is not None:
            raise self._writer.error
        report = self._compactor.compact()
        return report if report is not None else CompactionReport("explicit")

    def checkpoint(
        self,
        dest: str | os.PathLike[str],
        *,
        link: bool = True,
        reuse: Reuse | None = None,
        progress: Progress | None = None,
    ) -> CheckpointReport:
        """Copy the store as of this instant into the new directory ``dest``; writes go on.

        Sealed files are hard linked (copied on another file system, or if
        ``link`` is False; ``reuse`` may name an identical file to link
        instead, as incremental backups do), the active segment is copied up
        to the last write, made durable first. ``dest`` opens as a store
        holding exactly the writes up to the report's ``sequence``. Until the
        copy is complete and durable, ``dest`` holds a marker that makes
        ``Engine.open`` refuse it. See ``engine.checkpoint``.
        """
        return take_checkpoint(
            self._writer,
            self._compactor,
            lambda: self._seq,
            dest,
            link=link,
            reuse=reuse,
            progress=progress,
        )

    def stats(self) -> EngineStats:
        """Keys, segments with live and dead bytes, writes, fsyncs, and what recovery did."""
        writer = self._writer
        keyspace = self._keyspace
        with writer.lock:
            keyspace.drop_expired(self._clock())
            sizes = writer.segment_sizes()
            segments: dict[str, SegmentStats] = {
                segment_name(i): {
                    "bytes": size,
                    "live_bytes": max(size - FILE_HEADER_SIZE - keyspace.dead_bytes(i), 0),
                    "dead_bytes": keyspace.dead_bytes(i),
                }
                for i, size in sorted(sizes.items())
            }
            compactor = self._compactor
            last = compactor.last
            total = sum(sizes.values())
            dead = sum(keyspace.dead_bytes(i) for i in sizes)
            writes = self._seq - self._seq_at_open
            report = self._recovery
            return {
                "path": self.path,
                "sync": self._options.sync,
                "keys": len(keyspace),
                "expiring_keys": keyspace.expiring,
                "segments": segments,
                "segment_count": len(sizes),
                "active_segment": segment_name(writer.active_id),
                "disk_bytes": total,
                "free_bytes": writer.fs.free_bytes(self.path),
                "live_bytes": total - dead - FILE_HEADER_SIZE * len(sizes),
                "dead_bytes": dead,
                "sequence": self._seq,
                "writes": writes,
                "fsyncs": writer.fsyncs,
                "fsyncs_per_write": writer.fsyncs / writes if writes else 0.0,
                "failed": writer.error is not None and not self.closed,
                "recovery": {
                    "mode": report.mode,
                    "segments": report.segments,
                    "records": report.records,
                    "truncated_bytes": report.truncated_bytes,
                    "skipped_bytes": report.skipped_bytes,
                    "incomplete_batches": report.incomplete_batches,
                    "quarantined_segments": list(report.quarantined_segments),
                    "damage": list(report.damage),
                },
                "compaction": {
                    "auto": compactor.options.auto,
                    "running": compactor.running,
                    "count": compactor.count,
                },
                "last_compaction": last.as_dict() if last is not None else None,
            }

    @property
    def internals(self) -> Internals:
        """The writer, keyspace and compactor behind this store (for tests; see ``Internals``)."""
        return Internals(self._writer, self._keyspace, self._compactor)

    @property
    def closed(self) -> bool:
        """Whether ``close`` has been called."""
        return self._owner_lock is None

    def close(self) -> None:
        """Flush, fsync and release the directory; closing twice is harmless.

        A store whose fsync failed closes without syncing (its error is raised)
        and releases the directory so that a reopen can recover it.
        """
        if self._owner_lock is None:
            return
        self._compactor.shutdown()
        self._stop_syncing.set()
        if self._syncer is not None:
            self._syncer.join()
        try:
            self._writer.close()
            hint_log_at_close(self._writer.fs, self.path)
        finally:
            self._owner_lock.release()
            self._owner_lock = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{len(self._keyspace)} keys"
        return f"<Engine {self.path!r} sync={self._options.sync} {state}>"
