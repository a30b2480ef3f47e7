"""Catching up with a store another process owns: the read-only view a reader serves.

A ``View`` is one consistent state of the store (docs/MULTIPROCESS.md,
"Loading a view"): the compacted and sealed segments replayed by recovery's
code without repairs, and the active segment (``Tail``) read by catch-up,
which applies only complete units (a plain record, a batch with its commit)
and treats anything else at the tail as the owner's store in flight: it stops
before it and looks again later. ``engine.follower`` serves reads from it.
"""

from __future__ import annotations

import mmap
import os
import threading
from typing import Final

from engine.errors import CorruptionError, StorageError
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_DELETE,
    BATCH_PUT,
    FILE_HEADER_SIZE,
    LAYOUTS,
    MAX_HEADER_SIZE,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    MIN_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
)
from engine.fs import FileHandle, Mapping, SharedFileSystem
from engine.keyspace import Keyspace
from engine.location import pack_location
from engine.manifest import MANIFEST, Manifest, decode_manifest
from engine.reader import ScannedRecord, record_at
from engine.recovery import RecoveryMode, RecoveryReport, recover
from engine.segment import check_segment_header, parse_segment_name, segment_name

#: Catch-up reads the active segment in pieces this large (it is reserved ahead in zeros).
CHUNK: Final = 64 << 10
#: ... except its first piece: most catch-ups find a few records, and reading 64 KiB
#: of zeros costs more than they do.
FIRST_READ: Final = 4 << 10
#: How many times loading a view starts again while compactions keep committing under it.
LOAD_ATTEMPTS: Final = 100
_PAGE: Final = mmap.PAGESIZE


def scan_units(data: bytes) -> tuple[int, list[ScannedRecord], int]:
    """The complete units at the start of ``data``: ``(consumed, records, need)``.

    ``records`` are plain records, and batch members followed by their commit;
    a batch whose commit counts otherwise is dropped, as recovery drops it.
    Scanning stops at the first bytes that are not a valid record (zeros, a
    record being stored, a batch without its commit yet). ``need`` is how many
    bytes from the start would let it go further when the stop is only the end
    of ``data``, else 0.
    """
    offset = consumed = 0
    records: list[ScannedRecord] = []
    batch: list[ScannedRecord] = []
    while True:
        record = record_at(data, offset)
        if record is None:
            break
        size, rtype = record[1], record[2]
        offset += size
        if rtype in (BATCH_PUT, BATCH_DELETE):
            batch.append(record)
            continue
        if rtype == BATCH_COMMIT:
            if data[offset - 4 : offset] == BATCH_COUNT.pack(len(batch)) and batch:
                records.extend(batch)
                records.append(record)
        else:
            records.append(record)
        batch = []
        consumed = offset
    need = 0
    layout = LAYOUTS[data[offset + 4]] if len(data) - offset > 4 else None
    if layout is not None and len(data) - offset >= layout[1]:
        _crc, _tag, _seq, klen, vlen = layout[0](data, offset)
        size = layout[1] + klen + vlen
        if klen <= MAX_KEY_SIZE and vlen <= MAX_VALUE_SIZE and offset + size > len(data):
            need = offset + size
    elif batch or data[offset:].strip(b"\0"):
        need = len(data) + MAX_HEADER_SIZE
    return consumed, records, need


class Tail:
    """The active segment a reader follows: its file, mapping, and what it has applied."""

    __slots__ = ("file", "known_end", "map", "next_path", "peek", "segment_id", "size", "version")

    def __init__(self, directory: str, segment_id: int, file: FileHandle) -> None:
        self.segment_id = segment_id
        self.file = file
        #: Where a rollover creates the next segment.
        self.next_path = os.path.join(directory, segment_name(segment_id + 1))
        #: Offset after the last complete unit applied (0: header not yet seen).
        self.known_end = 0
        #: The file's size at the last catch-up (-1: never looked).
        self.size = -1
        self.map: Mapping | bytes = b""
        #: Where the next record's type byte is, if it may be read through ``map``; else -1.
        self.peek = -1
        #: The segment's format version, once its header was read.
        self.version = 0


class View:
    """One consistent state of the store: a keyspace, mappings, and the tail to follow."""

    def __init__(self, fs: SharedFileSystem, path: str, mode: RecoveryMode, now: float) -> None:
        self.fs = fs
        self.keyspace = Keyspace()
        self.maps: dict[int, Mapping] = {}
        self.sealed_sizes: dict[int, int] = {}
        self.files: list[FileHandle] = []
        self.seq = 0
        self.manifest: bytes | None = None
        #: ``MANIFEST``'s identity when ``manifest`` was read (``manifest_identity``).
        self.identity: tuple[int, ...] | None = None
        self.tail: Tail
        self.path = path
        self.report = RecoveryReport()
        try:
            self._load(mode, now)
        except BaseException:
            self._close_files()
            raise

    def _load(self, mode: RecoveryMode, now: float) -> None:
        """Steps 1-5 of "Loading a view": a manifest unchanged across the listing and opens."""
        directory = self.path
        fs = self.fs
        for _attempt in range(LOAD_ATTEMPTS):
            self._close_files()
            identity = manifest_identity(fs, directory)
            manifest = read_manifest(fs, directory)
            try:
                names = fs.listdir(directory)
            except OSError as exc:
                raise StorageError(f"cannot open the store {directory!r}: {exc}") from exc
            state = decode_manifest(manifest) if manifest is not None else Manifest()
            compacted = sorted(state.segments)
            ids = (parse_segment_name(n) for n in names if n not in state.dropped)
            logs = sorted(i for i in ids if i is not None)
            if not logs:
                raise StorageError(f"{directory!r} is not a seglog store (no segment file)")
            files: dict[int, FileHandle] = {}
            try:
                for segment_id in [*compacted, *logs]:
                    files[segment_id] = self.open(segment_id)
                if read_manifest(fs, directory) != manifest:
                    continue  # a compaction committed while the files were listed
                recovered = recover(
                    fs,
                    directory,
                    logs[:-1],
                    compacted=compacted,
                    mode=mode,
                    now=now,
                    readonly=True,
                )
            except FileNotFoundError:
                continue  # a compaction committed and deleted its inputs: look again
            break
        else:
            raise StorageError(f"{directory}: compactions kept committing while loading")
        self.manifest, self.identity = manifest, identity
        self.keyspace.restore(recovered.index, recovered.expiry, recovered.dead_bytes)
        self.seq = recovered.max_seq
        self.report = recovered.report
        for segment_id, size in recovered.segment_sizes.items():
            self.maps[segment_id] = files[segment_id].map(writable=False)
            self.sealed_sizes[segment_id] = size
        self.tail = Tail(directory, logs[-1], files[logs[-1]])

    def open(self, segment_id: int) -> FileHandle:
        """A segment opened read-only, closed with the view."""
        file = self.fs.open_reading(os.path.join(self.path, segment_name(segment_id)))
        self.files.append(file)
        return file

    def open_next(self, tail: Tail) -> FileHandle | None:
        """The segment after ``tail``'s, if it exists (the owner rolled over)."""
        try:
            return self.open(tail.segment_id + 1)
        except FileNotFoundError:
            return None

    def _close_files(self) -> None:
        for file in self.files:
            file.close()
        self.files = []

    def close(self) -> None:
        """Close the files; mappings stay readable until the last reference goes."""
        self._close_files()

    # ------------------------------------------------------------------ catch-up

    def catch_up(self, lock: threading.Lock, now: float) -> bool:
        """Apply the owner's new complete units, following rollovers; False if the
        followed segment is final and no next one exists yet (closed, or crashed)."""
        tail = self.tail
        while True:
            size = tail.file.size()
            if tail.known_end == 0 and not self._read_header(tail):
                tail.size = size
                return True
            self._apply_tail(tail, size, lock, now)
            tail.size = size
            if tail.known_end < size:
                break
            following = self.open_next(tail)
            if following is None:
                self._remap(tail)
                return False
            # The next segment exists, so this one is final: finish it and move on.
            final = tail.file.size()
            self._apply_tail(tail, final, lock, now)
            if tail.known_end != final:
                raise CorruptionError(
                    f"{segment_name(tail.segment_id)}: {final - tail.known_end} bytes after "
                    f"offset {tail.known_end} are not records in a sealed segment"
                )
            self._remap(tail)
            with lock:
                self.sealed_sizes[tail.segment_id] = tail.known_end
            tail = self.tail = Tail(self.path, tail.segment_id + 1, following)
        self._remap(tail)
        return True

    def applied(
        self,
        records: list[ScannedRecord],
        length: int,
        size: int,
        lock: threading.Lock,
        now: float,
    ) -> None:
        """Apply ``records`` (``length`` bytes, offsets from the last unit's end), which this
        process just stored there, as catch-up would, without reading them back; ``size``
        is the followed file's size now."""
        tail = self.tail
        self._apply(tail.segment_id, tail.known_end, records, lock, now)
        tail.known_end += length
        tail.size = size
        self._remap(tail)

    def _read_header(self, tail: Tail) -> bool:
        """Whether the followed segment's header is whole (a new one may be in creation)."""
        head = tail.file.pread(FILE_HEADER_SIZE, 0)
        try:
            tail.version = check_segment_header(head, segment_name(tail.segment_id))
        except CorruptionError:
            return False
        tail.known_end = FILE_HEADER_SIZE
        return True

    def _apply_tail(self, tail: Tail, size: int, lock: threading.Lock, now: float) -> None:
        want = FIRST_READ
        while size - tail.known_end >= MIN_HEADER_SIZE:
            start = tail.known_end
            data = tail.file.pread(min(want, size - start), start)
            if len(data) < MIN_HEADER_SIZE or not data[4]:
                return  # zeros: nothing more was written
            consumed, records, need = scan_units(data)
            # A new owner may have cut a half-written batch and written new records over
            # it meanwhile: a batch is applied only if two reads of it agree.
            batched = any(r[2] == BATCH_COMMIT for r in records)
            if batched and tail.file.pread(consumed, start) != data[:consumed]:
                continue
            if consumed:
                self._apply(tail.segment_id, start, records, lock, now)
                tail.known_end = start + consumed
                want = CHUNK
            elif need and len(data) < size - start:
                want = max(need, 2 * want)
            else:
                return

    def _apply(
        self,
        segment_id: int,
        base: int,
        records: list[ScannedRecord],
        lock: threading.Lock,
        now: float,
    ) -> None:
        """Apply records newer than everything applied before, as the owner's writes are."""
        keyspace = self.keyspace
        with lock:
            for offset, size, rtype, seq, expires_at, key in records:
                location = pack_location(segment_id, base + offset, size)
                if rtype in (PUT, BATCH_PUT):
                    if expires_at == NO_EXPIRY:
                        keyspace.put(key, location)
                    else:
                        keyspace.put_expiring(key, location, expires_at, now)
                elif rtype == BATCH_COMMIT:
                    keyspace.mark_dead(location)
                else:
                    keyspace.delete(key, location)
                self.seq = max(self.seq, seq)

    def _remap(self, tail: Tail) -> None:
        """Map the followed segment at its size once ``known_end`` passes its mapping."""
        if tail.known_end == 0:
            tail.peek = -1
            return
        if len(tail.map) < tail.known_end:
            # The previous mapping is dropped, not closed: a scan in flight holds its own.
            mapping = tail.file.map(writable=False)
            self.maps[tail.segment_id] = tail.map = mapping
        peek = tail.known_end + 4
        # Read through the mapping only in the page that holds the last applied byte:
        # a rollover or a new owner may cut the file there, and past it a page faults.
        same_page = peek // _PAGE == (tail.known_end - 1) // _PAGE
        # A file that ends at ``known_end`` (final, closed, or cut) always counts as changed.
        inside = peek < min(len(tail.map), tail.size)
        tail.peek = peek if same_page and inside else -1


def manifest_identity(fs: SharedFileSystem, directory: str) -> tuple[int, ...] | None:
    """``MANIFEST``'s inode, size and times: a compaction's commit (a rename) changes them."""
    return fs.identity(os.path.join(directory, MANIFEST))


def read_manifest(fs: SharedFileSystem, directory: str) -> bytes | None:
    try:
        return fs.read_file(os.path.join(directory, MANIFEST))
    except FileNotFoundError:
        return None
