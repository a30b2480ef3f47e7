"""Checkpoints: a consistent, openable copy of a live store, taken while writes go on.

A segment log is easy to copy consistently: sealed and compacted segments and
hints never change once written, so a copy is a set of hard links plus a
prefix of the active segment. ``take_checkpoint`` does it in four steps:

1. **Mark**: ``dest`` must be missing or empty. It is created with a marker
   file, ``CHECKPOINT-INCOMPLETE``, made durable before any data file, so a
   crash at any later point leaves a directory that says it is incomplete
   (``Engine.open`` refuses it: ``refuse_incomplete``).
2. **Freeze** (``Compactor.files_held``, then the write lock for a moment):
   note the sequence number, the write position, the sealed segments and the
   manifest. Compactions may go on rewriting, but none commits or deletes a
   file until the checkpoint is done. The log is then made durable up to the
   noted position (one fsync, shared with group commit), so the copy never
   holds a write the source could still lose.
3. **Take the files**: hard link every sealed segment, compacted segment and
   hint (copy them where linking is impossible, as across file systems
   (``EXDEV``), or not wanted); copy the active segment up to the noted
   position. That position is a record boundary and never inside a batch,
   since a batch is appended in one piece under the write lock.
4. **Seal**: write the manifest (the live compacted segments, nothing
   dropped); every copied file is fsynced as it is written. fsync the
   directory, then remove the marker and fsync the directory again.

The copy opens as a normal store holding exactly the writes up to its
sequence number. Linked files share their inode with the source; seglog never
writes into a sealed segment, so neither store can change the other.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

from engine.errors import StorageError
from engine.fs import FileSystem
from engine.hints import hint_name
from engine.manifest import MANIFEST, Manifest, encode_manifest
from engine.segment import COMPACTED_BASE, segment_name

if TYPE_CHECKING:
    from engine.compaction import Compactor
    from engine.writer import SegmentWriter

#: Present in a checkpoint (or restore) directory until the copy is complete and durable.
MARKER: Final = "CHECKPOINT-INCOMPLETE"
#: Bytes per write when copying a file.
COPY_CHUNK: Final = 1 << 20

#: ``(source path, name, size)`` -> the path of an identical file to link instead of copying.
Reuse = Callable[[str, str, int], str | None]
#: Told the number of bytes taken so far.
Progress = Callable[[int], None]


class IncompleteCheckpointError(StorageError):
    """The directory is a checkpoint or restore that never finished: it is not a store."""


@dataclass(frozen=True)
class SourceFile:
    """One file of a copy: its name, how many bytes to take, and whether it may be linked.

    Only a file that never changes may be linked, and only when it is exactly
    ``size`` bytes long; anything else is copied up to ``size``.
    """

    name: str
    size: int
    linkable: bool


@dataclass(frozen=True)
class CheckpointReport:
    """What one checkpoint did."""

    path: str
    #: The copy holds every write up to and including this sequence number, and no later one.
    sequence: int
    files_linked: int
    files_copied: int
    bytes_linked: int
    bytes_copied: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


def refuse_incomplete(fs: FileSystem, directory: str) -> None:
    """Raise IncompleteCheckpointError if ``directory`` holds a checkpoint's marker."""
    if fs.exists(os.path.join(directory, MARKER)):
        raise IncompleteCheckpointError(
            f"{directory}: an interrupted checkpoint or restore ({MARKER} is present); "
            "it may lack files: delete it and take a new one"
        )


def take_checkpoint(
    writer: SegmentWriter,
    compactor: Compactor,
    sequence: Callable[[], int],
    path: str | os.PathLike[str],
    *,
    link: bool = True,
    reuse: Reuse | None = None,
    progress: Progress | None = None,
) -> CheckpointReport:
    """Copy the store ``writer`` appends to into ``path`` as of one instant (see the module).

    ``sequence`` reads the store's last sequence number (called under the
    write lock). Raises ValueError if ``dest`` is not a missing or empty
    directory outside the store's, and the writer's error if the store has
    failed or closed (before anything is written). An I/O error on the way
    (a full disk, say) is a StorageError, and leaves ``dest`` marked.
    """
    started = time.perf_counter()
    fs = writer.fs
    dest = os.fspath(path) if isinstance(path, str | os.PathLike) else path
    if not isinstance(dest, str):
        raise TypeError(f"dest must be a str or os.PathLike path, not {type(path).__name__}")
    if writer.error is not None:
        raise writer.error
    inside = os.path.relpath(os.path.abspath(dest), os.path.abspath(writer.directory))
    if inside.split(os.sep)[0] != os.pardir:
        raise ValueError(f"{dest}: inside the store's own directory {writer.directory}")
    copier = FileCopier(fs, writer.directory, dest, link=link, reuse=reuse, progress=progress)
    try:
        copier.begin()
        with compactor.files_held() as manifest:
            with writer.lock:
                if writer.error is not None:
                    raise writer.error
                seq = sequence()
                position = writer.pos
                active, active_size = writer.active_id, writer.tail
                sealed = dict(writer.sealed_sizes)
            writer.make_durable(position)
            files = [*_sealed_files(fs, writer.directory, sealed, manifest)]
            files.append(SourceFile(segment_name(active), active_size, linkable=False))
            copier.take(files)
        if manifest.segments or manifest.next_number > 1:
            copier.write(
                MANIFEST, encode_manifest(Manifest(manifest.segments, manifest.next_number))
            )
        copier.finish()
    except OSError as exc:
        raise StorageError(
            f"{dest}: checkpoint failed ({exc}); what it wrote there is left marked incomplete"
        ) from exc
    return copier.report(seq, time.perf_counter() - started)


def _sealed_files(
    fs: FileSystem, directory: str, sealed: dict[int, int], manifest: Manifest
) -> Iterable[SourceFile]:
    """The sealed segments (and compacted segments' hints, where present) to link."""
    compacted = {i for i in sealed if i >= COMPACTED_BASE}
    if compacted != set(manifest.segments):
        raise StorageError(
            f"{directory}: the manifest and the segments in use disagree "
            f"({sorted(map(segment_name, compacted ^ set(manifest.segments)))})"
        )
    for segment_id, size in sorted(sealed.items()):
        yield SourceFile(segment_name(segment_id), size, linkable=True)
        if segment_id in compacted:
            hint = hint_name(segment_id)
            path = os.path.join(directory, hint)
            if fs.exists(path):
                yield SourceFile(hint, _size(fs, path), linkable=True)


def _size(fs: FileSystem, path: str) -> int:
    handle = fs.open(path)
    try:
        return handle.size()
    finally:
        handle.close()


class FileCopier:
    """Fills a new directory with links to and copies of files, marked incomplete until done."""

    def __init__(
        self,
        fs: FileSystem,
        source: str,
        dest: str,
        *,
        link: bool = True,
        reuse: Reuse | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.fs = fs
        self.source = source
        self.dest = dest
        self.link = link
        self.reuse = reuse
        self.progress = progress
        self.files_linked = self.files_copied = 0
        self.bytes_linked = self.bytes_copied = 0

    def begin(self) -> None:
        """Refuse a ``dest`` that is not a missing or empty directory; create it, marked."""
        fs, dest = self.fs, self.dest
        if fs.exists(dest):
            try:
                names = fs.listdir(dest)
            except OSError:
                raise ValueError(f"{dest}: exists and is not a directory") from None
            if names:
                raise ValueError(f"{dest}: not empty; a checkpoint needs a new directory")
        fs.makedirs(dest)
        marker = fs.open(os.path.join(dest, MARKER), create=True)
        try:
            marker.fsync()
        finally:
            marker.close()
        fs.fsync_dir(dest)

    def take(self, files: Iterable[SourceFile]) -> None:
        """Link or copy each file into ``dest``."""
        for file in files:
            src = os.path.join(self.source, file.name)
            dst = os.path.join(self.dest, file.name)
            if file.linkable and self._linked(src, dst, file):
                self.files_linked += 1
                self.bytes_linked += file.size
            else:
                self._copy(src, dst, file.size)
            self._advance()

    def _linked(self, src: str, dst: str, file: SourceFile) -> bool:
        """Hard link ``dst`` to ``src`` (or to an identical file ``reuse`` names) if possible."""
        if _size(self.fs, src) != file.size:
            return False
        if self.link:
            try:
                self.fs.link(src, dst)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                    raise
                self.link = False  # another file system: copy from now on
        same = self.reuse(src, file.name, file.size) if self.reuse is not None else None
        if same is None:
            return False
        try:
            self.fs.link(same, dst)
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                raise
            return False
        return True

    def _copy(self, src: str, dst: str, size: int) -> None:
        self.write(os.path.basename(dst), self._chunks(src, size))

    def _chunks(self, src: str, size: int) -> Iterator[bytes]:
        """The first ``size`` bytes of ``src``, a chunk at a time.

        A whole file is read as such (that works on a read-only store); a
        prefix, such as the active segment's, is read with ``pread`` so the
        preallocated rest is never read.
        """
        if _size(self.fs, src) == size:
            data = memoryview(self.fs.read_file(src))
            for start in range(0, size, COPY_CHUNK):
                yield bytes(data[start : start + COPY_CHUNK])
            return
        handle = self.fs.open(src)
        try:
            start = 0
            while start < size:  # by what each read returned: a read may come back short
                chunk = handle.pread(min(COPY_CHUNK, size - start), start)
                if not chunk:
                    raise StorageError(f"{src}: ends at {start} bytes, {size} expected")
                start += len(chunk)
                yield chunk
        finally:
            handle.close()

    def write(self, name: str, data: bytes | Iterable[bytes]) -> None:
        """Write a new file ``name`` in ``dest`` holding ``data`` (bytes or chunks); fsync it."""
        chunks = [data] if isinstance(data, bytes) else data
        handle = self.fs.open(os.path.join(self.dest, name), create=True)
        done = 0
        try:
            for chunk in chunks:
                while chunk:
                    written = handle.write(chunk)
                    chunk, done = chunk[written:], done + written
                if self.progress is not None:
                    self.progress(self.bytes_linked + self.bytes_copied + done)
            handle.fsync()
        finally:
            handle.close()
        self.files_copied += 1
        self.bytes_copied += done

    def _advance(self) -> None:
        if self.progress is not None:
            self.progress(self.bytes_linked + self.bytes_copied)

    def finish(self) -> None:
        """Make the directory durable (the files already are), then remove the marker."""
        self.fs.fsync_dir(self.dest)
        self.fs.unlink(os.path.join(self.dest, MARKER))
        self.fs.fsync_dir(self.dest)

    def report(self, sequence: int, seconds: float) -> CheckpointReport:
        return CheckpointReport(
            self.dest,
            sequence,
            self.files_linked,
            self.files_copied,
            self.bytes_linked,
            self.bytes_copied,
            seconds,
        )
