"""The file-system seam: the only code that touches the OS for data files.

The engine asks a ``FileSystem`` for everything: append handles, positional
reads, fsync of files and directories, rename, unlink, hard links, truncate and
the owner lock. ``OSFileSystem`` is the real backend. The in-memory backend that tracks
what a crash would keep, ``MemoryFileSystem``, is a testing tool and lives in
``engine.testing.memfs``.
"""

from __future__ import annotations

import errno
import fcntl
import functools
import mmap
import os
from collections.abc import Callable
from typing import Protocol, overload

from engine.errors import LockedError
from engine.filelock import FileLock


class Mapping(Protocol):
    """A shared memory mapping of a file: slices read and write the file's pages.

    Bytes stored into a shared mapping are in the kernel's page cache at once,
    exactly like bytes handed to ``write()``: a process crash cannot lose them.
    """

    @overload
    def __getitem__(self, index: int, /) -> int: ...

    @overload
    def __getitem__(self, index: slice, /) -> bytes: ...

    def __setitem__(self, index: slice, value: bytes, /) -> None: ...

    def __len__(self) -> int: ...

    def resize(self, size: int, /) -> None:
        """Grow or shrink the mapping and the file to ``size`` bytes."""
        ...

    def close(self) -> None:
        """Unmap."""
        ...


class FileHandle(Protocol):
    """An open data file: appends at the end, reads anywhere, maps into memory."""

    def write(self, data: bytes) -> int:
        """Append ``data``; return the number of bytes written."""
        ...

    def pread(self, size: int, offset: int) -> bytes:
        """Read up to ``size`` bytes at ``offset``."""
        ...

    def fsync(self) -> None:
        """Make the file's contents durable."""
        ...

    def truncate(self, size: int) -> None:
        """Cut the file to ``size`` bytes."""
        ...

    def size(self) -> int:
        """The file's current size."""
        ...

    def allocate(self, size: int) -> None:
        """Reserve disk blocks so the file holds at least ``size`` bytes (zeros past its end).

        Reserving up front turns a full disk into an OSError here rather than
        a SIGBUS later, when a store into the mapping finds no block.
        """
        ...

    def map(self, *, writable: bool) -> Mapping:
        """Map the whole file (it must not be empty), shared with the page cache."""
        ...

    def close(self) -> None:
        """Release the handle (does not fsync)."""
        ...


class Lock(Protocol):
    """A held owner lock on a store directory."""

    def release(self) -> None:
        """Give up ownership."""
        ...


class PositionalHandle(FileHandle, Protocol):
    """A data file opened for writes at any offset (not appending)."""

    def write_at(self, data: bytes, offset: int) -> int:
        """Write ``data`` at ``offset``; return the number of bytes written."""
        ...


class ProcessLock(Protocol):
    """A lock between processes on a file, released by the OS if its holder dies."""

    def hold_shared(self) -> None:
        """Hold it shared, or raise LockedError at once if it is held exclusively."""
        ...

    def __enter__(self) -> ProcessLock:
        """Wait for it and hold it exclusively."""
        ...

    def __exit__(self, *exc: object) -> None:
        """Give back an exclusive hold."""
        ...

    def try_acquire(self) -> bool:
        """Hold it exclusively if nobody else does; False at once otherwise."""
        ...

    def try_upgrade(self) -> bool:
        """Turn a shared hold exclusive if nobody else holds it (only for letting go)."""
        ...

    def release(self) -> None:
        """Give back a hold."""
        ...

    def close(self) -> None:
        """Give back any hold and close the lock file."""
        ...


class FileSystem(Protocol):
    """Everything the engine needs from the OS for its data files."""

    def open(self, path: str, *, create: bool = False) -> FileHandle:
        """Open ``path`` for appending and positional reads (create it if asked)."""
        ...

    def read_file(self, path: str) -> bytes:
        """The whole contents of ``path``."""
        ...

    def listdir(self, path: str) -> list[str]:
        """Names in directory ``path``."""
        ...

    def exists(self, path: str) -> bool:
        """Whether ``path`` names an existing file or directory."""
        ...

    def makedirs(self, path: str) -> None:
        """Create directory ``path`` and its parents if missing, durably.

        The parent of each directory created is fsynced, and so is the parent
        of ``path`` even when it exists: a crash between an earlier ``mkdir``
        and its parent's fsync must not leave a store whose directory a power
        cut can still take away.
        """
        ...

    def replace(self, src: str, dst: str) -> None:
        """Atomically rename ``src`` over ``dst``."""
        ...

    def unlink(self, path: str) -> None:
        """Remove file ``path``."""
        ...

    def link(self, src: str, dst: str) -> None:
        """Make ``dst`` a hard link to file ``src``; OSError (``EXDEV``) across file systems."""
        ...

    def fsync_dir(self, path: str) -> None:
        """Make the directory's entries (creates, renames, unlinks) durable."""
        ...

    def lock(self, path: str) -> Lock:
        """Take the exclusive owner lock at ``path`` or raise LockedError at once."""
        ...

    def free_bytes(self, path: str) -> int:
        """Bytes this process may still write on the file system holding ``path``."""
        ...


def write_all(handle: FileHandle, data: bytes) -> None:
    """Write all of ``data``, going on after a short write (POSIX allows one anywhere)."""
    while data:
        written = handle.write(data)
        if written <= 0:
            raise OSError(errno.EIO, "a write made no progress")
        data = data[written:]


# --------------------------------------------------------------------------- real


class OSFile:
    """A real file descriptor: O_RDWR | O_APPEND, or read-only, or positional.

    ``write``, ``pread`` and ``size`` are bound straight to ``os.write``,
    ``os.pread`` and ``os.lseek`` (no Python frame in between): they sit on the
    put and get hot paths (a reader checks the size before each get).
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self.write: Callable[[bytes], int] = functools.partial(os.write, fd)
        self.pread: Callable[[int, int], bytes] = functools.partial(os.pread, fd)
        self.size: Callable[[], int] = functools.partial(os.lseek, fd, 0, os.SEEK_END)

    def write_at(self, data: bytes, offset: int) -> int:
        return os.pwrite(self._fd, data, offset)

    def fsync(self) -> None:
        os.fsync(self._fd)

    def truncate(self, size: int) -> None:
        os.ftruncate(self._fd, size)

    def allocate(self, size: int) -> None:
        current = self.size()
        if size > current:
            os.posix_fallocate(self._fd, current, size - current)

    def map(self, *, writable: bool) -> Mapping:
        access = mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ
        return mmap.mmap(self._fd, self.size(), access=access)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            # The bound calls must not reach whatever file reuses the number.
            self.write = functools.partial(os.write, -1)
            self.pread = functools.partial(os.pread, -1)
            self.size = functools.partial(os.lseek, -1, 0, os.SEEK_END)


class OSLock:
    """An ``fcntl.flock`` on a lock file: released by the kernel if the process dies."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class SharedFileSystem(FileSystem, Protocol):
    """What processes sharing one store need besides ``FileSystem`` (``engine.shared``).

    ``OSFileSystem`` is one; so is the in-memory ``MemoryFileSystem``, on which
    the crash simulator runs several "processes" interleaved.
    """

    def open_reading(self, path: str) -> FileHandle:
        """Open ``path`` read-only (a reader may not be allowed to write the store)."""
        ...

    def open_writing(self, path: str) -> PositionalHandle:
        """Open ``path`` for writes at any offset."""
        ...

    def identity(self, path: str) -> tuple[int, ...] | None:
        """What changes when ``path`` is replaced or written (inode, size, times), or None."""
        ...

    def process_lock(self, path: str) -> ProcessLock:
        """The lock file ``path`` (created if missing), not yet held."""
        ...


class OSFileSystem:
    """The real file system."""

    def open(self, path: str, *, create: bool = False) -> OSFile:
        flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | (os.O_CREAT if create else 0)
        return OSFile(os.open(path, flags, 0o644))

    def open_reading(self, path: str) -> OSFile:
        return OSFile(os.open(path, os.O_RDONLY | os.O_CLOEXEC))

    def open_writing(self, path: str) -> OSFile:
        return OSFile(os.open(path, os.O_RDWR | os.O_CLOEXEC))

    def identity(self, path: str) -> tuple[int, ...] | None:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns

    def process_lock(self, path: str) -> FileLock:
        return FileLock(path)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def makedirs(self, path: str) -> None:
        path = os.path.abspath(path)
        missing = []
        while not os.path.isdir(path):
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            try:
                os.mkdir(directory)
            except FileExistsError:
                if not os.path.isdir(directory):
                    raise
            self.fsync_dir(os.path.dirname(directory))
        if not missing:
            self.fsync_dir(os.path.dirname(path))

    def replace(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def link(self, src: str, dst: str) -> None:
        os.link(src, dst)

    def fsync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def free_bytes(self, path: str) -> int:
        stat = os.statvfs(path)
        return stat.f_bavail * stat.f_frsize

    def lock(self, path: str) -> OSLock:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(os.path.dirname(path) or path) from None
            raise
        return OSLock(fd)
