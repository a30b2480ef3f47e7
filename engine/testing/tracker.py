"""What a crash would keep: the durable state of every file and the operations pending.

A ``Tracker`` follows a ``MemoryFileSystem``'s journal of operations. Per file
(by inode, so renames keep their history) it keeps the bytes as of the last
fsync, per directory the names as of the last directory fsync, and the
operations still pending since then, in issue order. ``Durable.image`` turns
the durable state plus a chosen subset of the pending operations (the last
write possibly torn) into a ``DiskImage``: the files a process sees after that
crash. The crash simulator (``engine.testing.simulator``) chooses the subsets.

>>> tracker = Tracker.from_image(DiskImage.empty())
>>> for op in [("mkdir", "/db"), ("create", "/db/f"), ("write", "/db/f", 0, b"hi")]:
...     tracker.apply(op)
>>> tracker.visible().describe()
'/db/f (2 bytes)'
>>> tracker.durable().image().describe()  # nothing was fsynced
'empty'
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, NamedTuple

from engine.testing.memfs import Inode, MemoryFileSystem, Op

#: Torn variants of a pending write, in the order they are generated.
TORN_KINDS: Final = ("torn-cut", "torn-zero", "torn-garbage", "torn-suffix")

_DATA_OPS: Final = frozenset({"write", "allocate", "truncate"})


@dataclass(frozen=True)
class DiskImage:
    """Files (path -> bytes) and directories a process sees after a crash. Hashable."""

    files: tuple[tuple[str, bytes], ...]
    dirs: tuple[str, ...]

    @classmethod
    def of(cls, files: dict[str, bytes], dirs: Iterable[str]) -> DiskImage:
        return cls(tuple(sorted(files.items())), tuple(sorted(set(dirs) | {"/"})))

    @classmethod
    def empty(cls) -> DiskImage:
        return cls((), ("/",))

    def file_dict(self) -> dict[str, bytes]:
        return dict(self.files)

    def filesystem(self) -> MemoryFileSystem:
        """A fresh ``MemoryFileSystem`` showing this image, all of it durable."""
        fs = MemoryFileSystem()
        fs.dirs = set(self.dirs)
        fs.files = {path: Inode(bytearray(data), data) for path, data in self.files}
        fs.durable_files = dict(fs.files)
        return fs

    def describe(self) -> str:
        return ", ".join(f"{path} ({len(data)} bytes)" for path, data in self.files) or "empty"


class Pending(NamedTuple):
    """One operation not yet made durable, in issue order.

    Data ops (``write``, ``allocate``, ``truncate``) name an inode and become
    durable with its fsync; namespace ops (``create``, ``rename``, ``link``, ``unlink``,
    ``mkdir``) name a directory and become durable with its fsync.
    """

    name: str
    ino: int = -1
    directory: str = ""
    path: str = ""
    dst: str = ""
    number: int = 0  # the offset of a write, the size of an allocate or truncate
    data: bytes = b""

    @property
    def is_data(self) -> bool:
        return self.ino >= 0 and self.name in _DATA_OPS


@dataclass(frozen=True)
class Durable:
    """What a power cut keeps: names and directories, and inode bytes, as last fsynced."""

    names: dict[str, int]
    dirs: frozenset[str]
    contents: dict[int, bytes]

    def image(self, applied: Iterable[Pending] = (), torn: Tear | None = None) -> DiskImage:
        """This durable state with ``applied`` pending ops redone in order, then ``torn``."""
        content: dict[int, bytearray] = {}
        names = dict(self.names)
        dirs = set(self.dirs)

        def data_of(ino: int) -> bytearray:
            found = content.get(ino)
            if found is None:
                found = content[ino] = bytearray(self.contents.get(ino, b""))
            return found

        for entry in applied:
            _redo(entry, data_of, names, dirs)
        if torn is not None:
            _tear(data_of(torn.entry.ino), torn)
        files = {
            path: bytes(content[ino]) if ino in content else self.contents.get(ino, b"")
            for path, ino in names.items()
        }
        return DiskImage.of(_reachable(files, dirs), dirs)


class Tear(NamedTuple):
    """A pending write that reached the disk only partly."""

    entry: Pending
    how: str
    cut: int


@dataclass
class _Inode:
    data: bytearray
    durable: bytes


@dataclass
class Tracker:
    """What the OS shows, what a power cut keeps, and what is pending in between."""

    inodes: dict[int, _Inode] = field(default_factory=dict)
    names: dict[str, int] = field(default_factory=dict)
    durable_names: dict[str, int] = field(default_factory=dict)
    dirs: set[str] = field(default_factory=lambda: {"/"})
    durable_dirs: set[str] = field(default_factory=lambda: {"/"})
    pending: list[Pending] = field(default_factory=list)
    next_id: int = 0
    #: The last operation, if it was a write within the file: its inode, offset and the
    #: bytes it replaced. A process killed during it may have stored any part of it.
    last_store: tuple[int, int, bytes] | None = None

    @classmethod
    def from_image(cls, image: DiskImage) -> Tracker:
        tracker = cls(dirs=set(image.dirs), durable_dirs=set(image.dirs))
        for path, data in image.files:
            ino = tracker._new_inode(data)
            tracker.names[path] = tracker.durable_names[path] = ino
        return tracker

    def copy(self) -> Tracker:
        return Tracker(
            {i: _Inode(bytearray(n.data), n.durable) for i, n in self.inodes.items()},
            dict(self.names),
            dict(self.durable_names),
            set(self.dirs),
            set(self.durable_dirs),
            list(self.pending),
            self.next_id,
            self.last_store,
        )

    def torn_store(self, cut: int, *, suffix: bool) -> Tracker:
        """A copy in which the last store reached memory only in part.

        A store into a mapping is a ``memcpy``, and ``memcpy`` does not fill
        memory in order (glibc's copies of more than 256 bytes store their first
        32 bytes last), so a process killed during one may leave its bytes before
        ``cut`` (``suffix=False``) or only those from ``cut`` on (``suffix=True``).
        """
        assert self.last_store is not None
        ino, offset, old = self.last_store
        new = self.pending[-1].data
        torn = old[:cut] + new[cut:] if suffix else new[:cut] + old[cut:]
        copy = self.copy()
        copy.inodes[ino].data[offset : offset + len(torn)] = torn
        copy.pending[-1] = copy.pending[-1]._replace(data=torn)
        copy.last_store = None
        return copy

    def _new_inode(self, data: bytes = b"") -> int:
        ino = self.next_id
        self.next_id += 1
        self.inodes[ino] = _Inode(bytearray(data), data)
        return ino

    def _ino(self, path: str) -> int:
        try:
            return self.names[path]
        except KeyError:
            raise ValueError(f"journal names {path!r}, which the tracker does not know") from None

    def apply(self, op: Op) -> None:
        """Follow one journaled operation (it has already happened on the file system)."""
        name = str(op[0])
        path = str(op[1])
        self.last_store = None
        if name == "write":
            ino = self._ino(path)
            offset, data = op[2], op[3]  # type: ignore[misc]
            assert isinstance(offset, int) and isinstance(data, bytes), op
            contents = self.inodes[ino].data
            if offset + len(data) <= len(contents):
                self.last_store = (ino, offset, bytes(contents[offset : offset + len(data)]))
            _write(contents, offset, data)
            self.pending.append(Pending("write", ino, number=offset, data=data))
        elif name in ("allocate", "truncate"):
            ino = self._ino(path)
            size = op[2]
            assert isinstance(size, int), op
            (_allocate if name == "allocate" else _truncate)(self.inodes[ino].data, size)
            self.pending.append(Pending(name, ino, number=size))
        elif name == "fsync":
            ino = self._ino(path)
            inode = self.inodes[ino]
            inode.durable = bytes(inode.data)
            self.pending = [p for p in self.pending if p.ino != ino or not p.is_data]
        elif name == "create":
            ino = self._new_inode()
            self.names[path] = ino
            self.pending.append(Pending("create", ino, os.path.dirname(path), path))
        elif name == "rename":
            dst = str(op[2])
            ino = self.names.pop(path)
            self.names[dst] = ino
            self.pending.append(Pending("rename", ino, os.path.dirname(dst), path, dst))
        elif name == "link":
            dst = str(op[2])
            ino = self._ino(path)
            self.names[dst] = ino
            self.pending.append(Pending("link", ino, os.path.dirname(dst), path, dst))
        elif name == "unlink":
            del self.names[path]
            self.pending.append(Pending("unlink", -1, os.path.dirname(path), path))
        elif name == "mkdir":
            self.dirs.add(path)
            self.pending.append(Pending("mkdir", -1, os.path.dirname(path), path))
        elif name == "fsync_dir":
            self._fsync_dir(path)
        else:
            raise ValueError(f"unknown journal operation {op!r}")

    def _fsync_dir(self, directory: str) -> None:
        for path in [p for p in self.durable_names if os.path.dirname(p) == directory]:
            del self.durable_names[path]
        for path, ino in self.names.items():
            if os.path.dirname(path) == directory:
                self.durable_names[path] = ino
        self.durable_dirs = {d for d in self.durable_dirs if os.path.dirname(d) != directory}
        self.durable_dirs |= {d for d in self.dirs if d != "/" and os.path.dirname(d) == directory}
        self.durable_dirs.add("/")
        self.pending = [p for p in self.pending if p.is_data or p.directory != directory]

    # ------------------------------------------------------------- images

    def visible(self) -> DiskImage:
        """What the OS shows (and a process started after a SIGKILL sees)."""
        files = {p: bytes(self.inodes[i].data) for p, i in self.names.items()}
        return DiskImage.of(_reachable(files, self.dirs), self.dirs)

    def durable(self) -> Durable:
        """A snapshot of what a power cut keeps, independent of later operations."""
        return Durable(
            dict(self.durable_names),
            frozenset(self.durable_dirs),
            {i: n.durable for i, n in self.inodes.items()},
        )

    def signature(self) -> tuple[object, ...]:
        """A hashable summary of the durable state and pending ops (inode ids renamed)."""
        order: dict[int, int] = {}

        def canon(ino: int) -> int:
            return order.setdefault(ino, len(order)) if ino >= 0 else ino

        durable = tuple(sorted((p, canon(i)) for p, i in self.durable_names.items()))
        contents = tuple((canon(i), self.inodes[i].durable) for i in sorted(self.inodes, key=canon))
        pending = tuple(p._replace(ino=canon(p.ino)) for p in self.pending)
        return (durable, tuple(sorted(self.durable_dirs)), contents, pending)


def _write(data: bytearray, offset: int, payload: bytes) -> None:
    if offset > len(data):
        data.extend(bytes(offset - len(data)))
    data[offset : offset + len(payload)] = payload


def _allocate(data: bytearray, size: int) -> None:
    if size > len(data):
        data.extend(bytes(size - len(data)))


def _truncate(data: bytearray, size: int) -> None:
    if size < len(data):
        del data[size:]
    else:
        data.extend(bytes(size - len(data)))


def _redo(
    entry: Pending,
    data_of: Callable[[int], bytearray],
    names: dict[str, int],
    dirs: set[str],
) -> None:
    name = entry.name
    if name == "write":
        _write(data_of(entry.ino), entry.number, entry.data)
    elif name == "allocate":
        _allocate(data_of(entry.ino), entry.number)
    elif name == "truncate":
        _truncate(data_of(entry.ino), entry.number)
    elif name == "create":
        names[entry.path] = entry.ino
    elif name == "rename":
        names.pop(entry.path, None)
        names[entry.dst] = entry.ino
    elif name == "link":
        names[entry.dst] = entry.ino
    elif name == "unlink":
        names.pop(entry.path, None)
    elif name == "mkdir":
        dirs.add(entry.path)


def garbage(offset: int, size: int) -> bytes:
    """Deterministic non-zero junk for a torn write at ``offset``."""
    rng = random.Random(offset * 7919 + size)
    return bytes(rng.randrange(1, 256) for _ in range(size))


def _tear(data: bytearray, tear: Tear) -> None:
    offset, payload, cut = tear.entry.number, tear.entry.data, tear.cut
    size = len(payload)
    if tear.how == "torn-cut":
        _write(data, offset, payload[:cut])
    elif tear.how == "torn-zero":
        _allocate(data, offset + size)
        data[offset : offset + size] = bytes(size)
    elif tear.how == "torn-garbage":
        _write(data, offset, garbage(offset, size))
    elif tear.how == "torn-suffix":
        _allocate(data, offset + size)
        data[offset + cut : offset + size] = payload[cut:]
    else:
        raise ValueError(f"unknown tear {tear.how!r}")


def _reachable(files: dict[str, bytes], dirs: set[str] | frozenset[str]) -> dict[str, bytes]:
    def exists(d: str) -> bool:
        while d != "/":
            if d not in dirs:
                return False
            d = os.path.dirname(d)
        return True

    return {p: data for p, data in files.items() if exists(os.path.dirname(p))}
