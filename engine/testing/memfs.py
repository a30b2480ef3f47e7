"""An in-memory ``FileSystem`` that knows what a crash would keep.

``MemoryFileSystem`` keeps files in memory, tracks per file and per directory
what has been made durable, and journals every mutating operation (an ``Op``).
The crash simulator reads that journal; tests pass one to ``Engine.open(...,
fs=...)`` to run the engine without a disk. It implements the ``FileSystem``
protocol of ``engine.fs``.

>>> fs = MemoryFileSystem()
>>> fs.makedirs("/db")
>>> with_data = fs.open("/db/f", create=True)
>>> with_data.write(b"hello")
5
>>> fs.after_process_crash().read_file("/db/f")
b'hello'
>>> fs.after_power_loss().exists("/db/f")  # neither the bytes nor the entry were fsynced
False
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import overload

from engine.errors import LockedError

#: One journal entry: the operation's name and its arguments.
Op = tuple[str, ...] | tuple[str, str, int] | tuple[str, str, int, bytes]


@dataclass
class Inode:
    """One in-memory file: what the OS shows (``data``) and what a power cut keeps."""

    data: bytearray = field(default_factory=bytearray)
    durable: bytes = b""


#: The page size of the mappings' model: past the page holding a file's last byte, a
#: mapped read faults.
PAGE = 4096


class Sigbus(BaseException):
    """A mapped read of a page past the end of its file: on Linux the process gets SIGBUS
    and dies (Python cannot catch it). A ``BaseException``: no ``except`` may go on."""


def _fault_past_end(index: int, size: int) -> None:
    if size == 0 or index // PAGE > (size - 1) // PAGE:
        raise Sigbus(f"mapped read at offset {index} of a file of {size} bytes")


class MemoryMapping:
    """A shared mapping of an ``Inode``: stores are journalled as positional writes."""

    def __init__(self, fs: MemoryFileSystem, path: str, inode: Inode, writable: bool) -> None:
        self._fs = fs
        self._path = path
        self._inode = inode
        self._writable = writable
        self._size = len(inode.data)
        self._closed = False

    def _check(self) -> None:
        if self._closed:
            raise ValueError("mmap closed or invalid")

    @overload
    def __getitem__(self, index: int, /) -> int: ...

    @overload
    def __getitem__(self, index: slice, /) -> bytes: ...

    def __getitem__(self, index: int | slice, /) -> int | bytes:
        self._check()
        data = self._inode.data
        if isinstance(index, int):
            if not 0 <= index < self._size:
                raise IndexError("mmap index out of range")
            _fault_past_end(index, len(data))
            return data[index] if index < len(data) else 0
        start, stop, _ = index.indices(self._size)
        if stop > start:
            _fault_past_end(stop - 1, len(data))
        return bytes(data[start:stop]).ljust(stop - start, b"\0") if stop > start else b""

    def __setitem__(self, index: slice, value: bytes, /) -> None:
        self._check()
        if not self._writable:
            raise TypeError("mmap can't modify a readonly memory map.")
        start, stop, _ = index.indices(self._size)
        if stop - start != len(value) or stop > len(self._inode.data):
            raise IndexError("mmap slice assignment is wrong size")
        self._fs.storing_to_mapping = True
        try:
            self._fs._record(("write", self._path, start, bytes(value)))
        finally:
            self._fs.storing_to_mapping = False
        self._inode.data[start:stop] = value

    def __len__(self) -> int:
        return self._size

    def resize(self, size: int, /) -> None:
        self._check()
        data = self._inode.data
        if size > len(data):
            self._fs.reserve(size - len(data), self._path)
            self._fs._record(("allocate", self._path, size))
            data.extend(bytes(size - len(data)))
        elif size < len(data):
            self._fs._record(("truncate", self._path, size))
            del data[size:]
        self._size = size

    def close(self) -> None:
        self._closed = True


class MemoryFile:
    """A handle on an ``Inode`` of a ``MemoryFileSystem`` (``writable`` False: read-only)."""

    def __init__(
        self, fs: MemoryFileSystem, path: str, inode: Inode, *, writable: bool = True
    ) -> None:
        self._fs = fs
        self._path = path
        self._inode = inode
        self._writable = writable
        self._closed = False

    def _check(self) -> None:
        self._fs.gate()
        if self._closed:
            raise OSError(errno.EBADF, "file is closed", self._path)

    def _check_writable(self) -> None:
        self._check()
        if not self._writable:
            raise OSError(errno.EBADF, "file is open read-only", self._path)

    def write_at(self, data: bytes, offset: int) -> int:
        self._check_writable()
        extra = offset + len(data) - len(self._inode.data)
        if extra > 0:
            self._fs.reserve(extra, self._path)
        self._fs._record(("write", self._path, offset, bytes(data)))
        inode_data = self._inode.data
        if offset > len(inode_data):
            inode_data.extend(bytes(offset - len(inode_data)))
        inode_data[offset : offset + len(data)] = data
        return len(data)

    def write(self, data: bytes) -> int:
        self._check_writable()
        if self._fs.short_at == len(self._fs.journal) and len(data) > 1:
            data = data[: len(data) // 2]  # a short write: legal, and the caller must go on
        self._fs.reserve(len(data), self._path)
        self._fs._record(("write", self._path, len(self._inode.data), bytes(data)))
        self._inode.data += data
        return len(data)

    def pread(self, size: int, offset: int) -> bytes:
        self._check()
        fs = self._fs
        index, fs.reads = fs.reads, fs.reads + 1
        if index == fs.short_read_at and size > 1:
            size //= 2  # a short read: legal, and the caller must go on
        return bytes(self._inode.data[offset : offset + size])

    def fsync(self) -> None:
        self._check()
        self._fs._record(("fsync", self._path))
        self._inode.durable = bytes(self._inode.data)

    def truncate(self, size: int) -> None:
        self._check_writable()
        self._fs._record(("truncate", self._path, size))
        del self._inode.data[size:]

    def size(self) -> int:
        self._check()
        return len(self._inode.data)

    def allocate(self, size: int) -> None:
        self._check_writable()
        if size > len(self._inode.data):
            self._fs.reserve(size - len(self._inode.data), self._path)
            self._fs._record(("allocate", self._path, size))
            self._inode.data.extend(bytes(size - len(self._inode.data)))

    def map(self, *, writable: bool) -> MemoryMapping:
        if writable:
            self._check_writable()
        else:
            self._check()
        if not self._inode.data:
            raise ValueError("cannot mmap an empty file")
        return MemoryMapping(self._fs, self._path, self._inode, writable)

    def close(self) -> None:
        self._closed = True


class MemoryLock:
    """A ``flock`` in a ``MemoryFileSystem``: held shared or exclusive, by this object.

    The ``ProcessLock`` of ``engine.fs``; the owner lock (``lock``) is one held
    exclusively. Waiting goes through the file system's ``gate``, so that the
    scheduler of simulated processes (``engine.testing.interleave``) runs the
    holder meanwhile.
    """

    def __init__(self, fs: MemoryFileSystem, path: str) -> None:
        self._fs = fs
        self._path = path
        #: The simulated process that made it (``engine.testing.interleave``), if any.
        self.owner = fs.lock_owner()
        fs.lock_objects.append(self)

    def _holders(self) -> dict[MemoryLock, bool]:
        return self._fs.holders.setdefault(self._path, {})

    def _free(self, exclusive: bool) -> bool:
        others = {lock: excl for lock, excl in self._holders().items() if lock is not self}
        return not others or (not exclusive and not any(others.values()))

    def hold_shared(self) -> None:
        self._fs.gate()
        if not self._free(exclusive=False):
            raise LockedError(os.path.dirname(self._path))
        self._holders()[self] = False

    def __enter__(self) -> MemoryLock:
        self._fs.gate()
        while not self._free(exclusive=True):
            self._fs.wait()
        self._holders()[self] = True
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def try_acquire(self) -> bool:
        self._fs.gate()
        if not self._free(exclusive=True):
            return False
        self._holders()[self] = True
        return True

    def try_upgrade(self) -> bool:
        return self.try_acquire()

    def release(self) -> None:
        self._holders().pop(self, None)

    def close(self) -> None:
        self.release()


def _nothing() -> None:
    pass


def _no_waiting() -> None:
    raise LockedError("a lock another holder keeps (no other process to run)")


class MemoryFileSystem:
    """Files in memory, with the durable state a power cut would leave.

    ``files`` is the namespace the OS shows; ``durable_files`` is the namespace
    as of each directory's last fsync. Every mutating call is appended to
    ``journal`` and passed first to ``hook`` (if set), which may raise to
    inject a crash or an I/O error at that exact operation.
    """

    def __init__(self) -> None:
        self.files: dict[str, Inode] = {}
        self.dirs: set[str] = {"/"}
        self.durable_files: dict[str, Inode] = {}
        self.journal: list[Op] = []
        self.hook: Callable[[Op], None] | None = None
        #: Bytes the files may hold in all; past it, growing a file raises ENOSPC.
        self.capacity: int | None = None
        #: True while ``hook`` is told of a store into a mapping (not a system call).
        self.storing_to_mapping = False
        #: The journal position whose file write writes only half (a short write), and
        #: the count of ``pread`` calls (and which one returns only half), for fault tests.
        self.short_at: int | None = None
        self.reads = 0
        self.short_read_at: int | None = None
        #: Who holds each lock file (``process_lock``): lock object -> exclusive.
        self.holders: dict[str, dict[MemoryLock, bool]] = {}
        self.lock_objects: list[MemoryLock] = []
        #: Called before every operation, reads included, and while a lock is awaited:
        #: the scheduler of simulated processes switches between them there.
        self.gate: Callable[[], None] = _nothing
        self.wait: Callable[[], None] = _no_waiting
        self.lock_owner: Callable[[], object] = _nothing

    def used_bytes(self) -> int:
        """Bytes held by the files the OS shows (each inode once)."""
        return sum(len(inode.data) for inode in {id(i): i for i in self.files.values()}.values())

    def free_bytes(self, path: str) -> int:
        """Room left under ``capacity`` (a petabyte when there is none)."""
        if self.capacity is None:
            return 1 << 50
        return max(self.capacity - self.used_bytes(), 0)

    def reserve(self, extra: int, path: str) -> None:
        """Refuse (ENOSPC, nothing changed) growing a file by ``extra`` past ``capacity``."""
        if self.capacity is not None and self.used_bytes() + extra > self.capacity:
            raise OSError(errno.ENOSPC, "No space left on device", path)

    def _record(self, op: Op) -> None:
        if self.hook is not None:
            self.hook(op)
        self.journal.append(op)

    def _inode(self, path: str) -> Inode:
        try:
            return self.files[path]
        except KeyError:
            raise FileNotFoundError(errno.ENOENT, "no such file", path) from None

    def open(self, path: str, *, create: bool = False) -> MemoryFile:
        self.gate()
        path = os.path.normpath(path)
        if path not in self.files:
            if not create:
                raise FileNotFoundError(errno.ENOENT, "no such file", path)
            if os.path.dirname(path) not in self.dirs:
                raise FileNotFoundError(errno.ENOENT, "no such directory", path)
            self._record(("create", path))
            self.files[path] = Inode()
        return MemoryFile(self, path, self.files[path])

    def read_file(self, path: str) -> bytes:
        self.gate()
        return bytes(self._inode(os.path.normpath(path)).data)

    def listdir(self, path: str) -> list[str]:
        self.gate()
        path = os.path.normpath(path)
        if path not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", path)
        names = {os.path.basename(p) for p in self.files if os.path.dirname(p) == path}
        names |= {
            os.path.basename(d) for d in self.dirs if d != path and os.path.dirname(d) == path
        }
        return sorted(names)

    def exists(self, path: str) -> bool:
        self.gate()
        path = os.path.normpath(path)
        return path in self.files or path in self.dirs

    def makedirs(self, path: str) -> None:
        self.gate()
        path = os.path.normpath(path)
        missing = []
        while path not in self.dirs:
            missing.append(path)
            path = os.path.dirname(path)
        for directory in reversed(missing):
            self._record(("mkdir", directory))
            self.dirs.add(directory)
            self.fsync_dir(os.path.dirname(directory))
        if not missing:
            self.fsync_dir(os.path.dirname(path))

    def replace(self, src: str, dst: str) -> None:
        self.gate()
        src, dst = os.path.normpath(src), os.path.normpath(dst)
        inode = self._inode(src)
        self._record(("rename", src, dst))
        del self.files[src]
        self.files[dst] = inode

    def unlink(self, path: str) -> None:
        self.gate()
        path = os.path.normpath(path)
        self._inode(path)
        self._record(("unlink", path))
        del self.files[path]

    def link(self, src: str, dst: str) -> None:
        self.gate()
        src, dst = os.path.normpath(src), os.path.normpath(dst)
        inode = self._inode(src)
        if dst in self.files:
            raise FileExistsError(errno.EEXIST, "file exists", dst)
        if os.path.dirname(dst) not in self.dirs:
            raise FileNotFoundError(errno.ENOENT, "no such directory", dst)
        self._record(("link", src, dst))
        self.files[dst] = inode

    def fsync_dir(self, path: str) -> None:
        self.gate()
        path = os.path.normpath(path)
        self._record(("fsync_dir", path))
        inside = {p for p in self.durable_files if os.path.dirname(p) == path}
        for p in inside:
            del self.durable_files[p]
        for p, inode in self.files.items():
            if os.path.dirname(p) == path:
                self.durable_files[p] = inode

    def lock(self, path: str) -> MemoryLock:
        lock = self.process_lock(path)
        if not lock.try_acquire():
            raise LockedError(os.path.dirname(os.path.normpath(path)))
        return lock

    def process_lock(self, path: str) -> MemoryLock:
        return MemoryLock(self, os.path.normpath(path))

    def open_reading(self, path: str) -> MemoryFile:
        self.gate()
        path = os.path.normpath(path)
        return MemoryFile(self, path, self._inode(path), writable=False)

    def open_writing(self, path: str) -> MemoryFile:
        return self.open(path)

    def identity(self, path: str) -> tuple[int, ...] | None:
        self.gate()
        inode = self.files.get(os.path.normpath(path))
        if inode is None:
            return None
        return id(inode), len(inode.data), hash(bytes(inode.data))

    def after_power_loss(self) -> MemoryFileSystem:
        """A new file system holding only what was durable: synced entries, synced bytes."""
        fs = MemoryFileSystem()
        fs.dirs = set(self.dirs)
        fs.files = {
            p: Inode(bytearray(i.durable), i.durable) for p, i in self.durable_files.items()
        }
        fs.durable_files = dict(fs.files)
        return fs

    def after_process_crash(self) -> MemoryFileSystem:
        """A new file system holding what the OS had: everything written, no locks."""
        fs = MemoryFileSystem()
        fs.dirs = set(self.dirs)
        fs.files = {p: Inode(bytearray(i.data), bytes(i.data)) for p, i in self.files.items()}
        fs.durable_files = dict(fs.files)
        return fs
