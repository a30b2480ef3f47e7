"""The crash simulator: every disk state a real machine could be left in after a crash.

A ``CrashSimulator`` owns a ``MemoryFileSystem`` and reads its journal of
operations. It tracks, for every file, what a power cut would keep (the bytes
as of the file's last fsync, the names as of each directory's last fsync) and
the operations still pending since then, in the order they were issued. From
that it produces crash states:

``process``
    SIGKILL: the OS keeps everything written, stores into shared mappings
    included. Nothing becomes durable by the crash itself, so the simulator
    keeps tracking what is still pending for the next power cut.
``power/prefix``
    Power loss: everything synced plus an in-order prefix of the pending
    operations (from none to all of them).
``power/torn-cut``, ``power/torn-zero``, ``power/torn-garbage``, ``power/torn-suffix``
    A prefix whose last write is torn: cut short, zero-filled ("the size grew,
    the data never arrived"), filled with garbage, or only the sectors after a
    sector boundary arrived (sectors written out of order).
``power/drop-one``
    Every pending operation but one (a lost directory operation takes the
    later ones on the same directory with it).
``power/dir-reorder``
    Every pending operation but one directory operation, later directory
    operations included: POSIX does not order directory operations without a
    directory fsync between them, though journaling file systems do.
``power/dir-lost`` and ``power/data-lost``
    Every pending data operation but no pending directory operation (creates,
    renames, unlinks, mkdirs lost), and the other way round.
``power/file-prefix`` and ``power/file-subset``
    Each file keeps its own prefix, or its own subset, of its pending writes
    (sampled with a seeded RNG when there are too many combinations).

Example::

    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="always")
    db.put(b"k", b"v")
    for state in sim.crash_states():
        recovered = Engine.open("/db", fs=state.filesystem(), sync="always")
        assert recovered.get(b"k") == b"v"   # acknowledged with sync="always"
        recovered.close()

The model's limits are documented in docs/DURABILITY.md: renames are assumed to
stay within one directory, and apart from ``power/dir-reorder`` each directory's
pending operations reach the disk in order (journaling file systems log
metadata in order).
"""

from __future__ import annotations

import itertools
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final, NamedTuple

from engine.testing.memfs import Inode, MemoryFileSystem, Op

#: Torn variants of a pending write, in the order they are generated.
TORN_KINDS: Final = ("torn-cut", "torn-zero", "torn-garbage", "torn-suffix")
#: Every kind of crash state ``crash_states`` can produce.
CRASH_KINDS: Final = (
    "process",
    "power/prefix",
    *(f"power/{kind}" for kind in TORN_KINDS),
    "power/drop-one",
    "power/dir-reorder",
    "power/dir-lost",
    "power/data-lost",
    "power/file-prefix",
    "power/file-subset",
)
POWER_KINDS: Final = tuple(kind for kind in CRASH_KINDS if kind.startswith("power/"))

_DATA_OPS: Final = frozenset({"write", "allocate", "truncate"})


class SimulatedCrash(BaseException):
    """Raised by an armed simulator at the operation where the machine "stops".

    A ``BaseException`` so that no ``except Exception`` in the code under test
    can swallow it and carry on as if the machine were still running.
    """


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


# ----------------------------------------------------------------- the tracker


class Pending(NamedTuple):
    """One operation not yet made durable, in issue order.

    Data ops (``write``, ``allocate``, ``truncate``) name an inode and become
    durable with its fsync; namespace ops (``create``, ``rename``, ``unlink``,
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
        )

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
        if name == "write":
            ino = self._ino(path)
            offset, data = op[2], op[3]  # type: ignore[misc]
            assert isinstance(offset, int) and isinstance(data, bytes), op
            _write(self.inodes[ino].data, offset, data)
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


# ---------------------------------------------------------------- crash states


@dataclass
class CrashState:
    """One disk state a crash can leave. ``image`` is built on first use."""

    kind: str
    detail: str
    build: Callable[[], DiskImage]
    #: For process crashes: the tracker to continue with (nothing became durable).
    tracker: Tracker | None = None

    @cached_property
    def image(self) -> DiskImage:
        return self.build()

    @property
    def is_power_loss(self) -> bool:
        return self.tracker is None

    def key(self) -> tuple[object, ...]:
        """Hashable identity: the image, plus durability still pending for process crashes."""
        if self.tracker is None:
            return (self.image,)
        return (self.image, self.tracker.signature())

    def filesystem(self) -> MemoryFileSystem:
        """A fresh file system showing this state, for the next process to open."""
        fs = self.image.filesystem()
        if self.tracker is not None:
            # Keep MemoryFileSystem's own power-loss view honest too.
            durable = dict(self.tracker.durable().image().files)
            for path, inode in fs.files.items():
                inode.durable = durable.get(path, b"")
            fs.durable_files = {p: i for p, i in fs.files.items() if p in durable}
        return fs

    def __repr__(self) -> str:
        return f"CrashState({self.kind}: {self.detail})"


@dataclass(frozen=True)
class Limits:
    """How many states the combinatorial kinds may produce before they are sampled."""

    torn_cuts: int = 3
    combinations: int = 48
    seed: int = 0
    #: The device's atomic unit: a write torn out of order loses whole sectors.
    sector: int = 512


def crash_states_of(
    tracker: Tracker, kinds: Sequence[str] = CRASH_KINDS, limits: Limits = Limits()
) -> Iterator[CrashState]:
    """Every crash state of ``tracker`` of the given kinds (duplicates included).

    The states are snapshots: later operations on ``tracker`` do not change them.
    """
    pending = list(tracker.pending)
    count = len(pending)
    wanted = set(kinds)
    durable = tracker.durable()

    def power(
        kind: str, detail: str, applied: Sequence[Pending], torn: Tear | None = None
    ) -> CrashState:
        return CrashState(f"power/{kind}", detail, lambda: durable.image(applied, torn))

    if "process" in wanted:
        snapshot = tracker.copy()
        yield CrashState("process", "everything written", snapshot.visible, snapshot)
    if "power/prefix" in wanted:
        for k in range(count + 1):
            yield power("prefix", f"{k} of {count} pending ops", pending[:k])
    for k, entry in enumerate(pending):
        if entry.name != "write":
            continue
        size = len(entry.data)
        for how in TORN_KINDS:
            if f"power/{how}" not in wanted:
                continue
            if how == "torn-cut":
                cuts = sorted({1, size // 2, size - 1} - {0, size})[: limits.torn_cuts]
            elif how == "torn-suffix":  # sectors are atomic: the lost part ends at a boundary
                first = (entry.number // limits.sector + 1) * limits.sector - entry.number
                cuts = list(range(first, size, limits.sector))[: limits.torn_cuts]
            else:
                cuts = [0]
            for cut in cuts:
                detail = f"op {k} of {count} ({size} bytes) torn at {cut}"
                yield power(how, detail, pending[:k], Tear(entry, how, cut))
    if "power/drop-one" in wanted:
        for k in range(count - 1):
            lost = pending[k]
            if lost.is_data:
                kept = pending[:k] + pending[k + 1 :]
            else:  # a directory's operations reach the disk in order: later ones go too
                kept = pending[:k] + [
                    p for p in pending[k + 1 :] if p.is_data or p.directory != lost.directory
                ]
            yield power("drop-one", f"all but op {k} of {count}", kept)
    if "power/dir-reorder" in wanted:
        for k, lost in enumerate(pending[:-1]):
            if not lost.is_data and any(not p.is_data for p in pending[k + 1 :]):
                detail = f"all but directory op {k} of {count} ({lost.name} {lost.path})"
                yield power("dir-reorder", detail, pending[:k] + pending[k + 1 :])
    data_ops = [p for p in pending if p.is_data]
    dir_ops = [p for p in pending if not p.is_data]
    if dir_ops and "power/dir-lost" in wanted:
        yield power("dir-lost", f"{len(dir_ops)} directory ops lost", data_ops)
    if dir_ops and data_ops and "power/data-lost" in wanted:
        yield power("data-lost", f"{len(data_ops)} data ops lost", dir_ops)
    by_file: dict[int, list[int]] = {}
    for position, p in enumerate(pending):
        if p.is_data:
            by_file.setdefault(p.ino, []).append(position)
    files = sorted(by_file)
    rng = random.Random(limits.seed * 1_000_003 + count)
    if len(files) > 1 and "power/file-prefix" in wanted:
        ranges = [range(len(by_file[f]) + 1) for f in files]
        total = 1
        for r in ranges:
            total *= len(r)
        combos: Iterable[tuple[int, ...]]
        if total <= limits.combinations:
            combos = itertools.product(*ranges)
        else:
            combos = [tuple(rng.choice(r) for r in ranges) for _ in range(limits.combinations)]
        for combo in combos:
            drop = {i for f, n in zip(files, combo, strict=True) for i in by_file[f][n:]}
            applied = [p for i, p in enumerate(pending) if i not in drop]
            yield power("file-prefix", f"per-file prefixes {combo}", applied)
    if "power/file-subset" in wanted:
        for f in files:
            positions = by_file[f]
            if len(positions) < 3:
                continue  # every subset of one or two ops is a prefix or a drop-one
            masks: Iterable[int]
            if 2 ** len(positions) <= limits.combinations:
                masks = range(2 ** len(positions))
            else:
                masks = [rng.randrange(2 ** len(positions)) for _ in range(limits.combinations)]
            for mask in masks:
                drop = {i for bit, i in enumerate(positions) if not mask >> bit & 1}
                applied = [p for i, p in enumerate(pending) if i not in drop]
                detail = f"file {f}: subset {mask:0{len(positions)}b} of {len(positions)} ops"
                yield power("file-subset", detail, applied)


# ---------------------------------------------------------------- the simulator


class CrashSimulator:
    """A ``MemoryFileSystem`` whose journal is followed to produce crash states.

    ``fs`` is the file system to hand to the code under test. ``crash_states()``
    lists the states a crash *now* could leave; ``restart(state)`` continues from
    one of them with a fresh ``fs`` (as a new process after the crash would).
    ``arm(n)`` makes the ``n``-th next file operation raise ``SimulatedCrash``.
    """

    def __init__(self, image: DiskImage | None = None, *, limits: Limits = Limits()) -> None:
        self.limits = limits
        self.tracker = Tracker.from_image(image or DiskImage.empty())
        self.fs = self.tracker.visible().filesystem()
        self._seen = 0
        self._countdown: int | None = None
        self.crashed = False
        self.fs.hook = self._hook

    # ------------------------------------------------------------ following

    def _hook(self, op: Op) -> None:
        if self.crashed:
            raise SimulatedCrash(f"the machine is down (refused {op[0]})")
        if self._countdown is not None:
            if self._countdown == 0:
                self.crashed = True
                raise SimulatedCrash(f"simulated crash before {op[0]} {op[1]}")
            self._countdown -= 1

    def catch_up(self) -> Tracker:
        """Feed the journal's new entries to the tracker; return it."""
        journal = self.fs.journal
        for op in journal[self._seen :]:
            self.tracker.apply(op)
        self._seen = len(journal)
        return self.tracker

    @property
    def ops(self) -> int:
        """How many file operations have been performed since the last restart."""
        return len(self.fs.journal)

    def arm(self, after: int) -> None:
        """Crash (raise ``SimulatedCrash``) before the file operation ``after`` ops from now."""
        self._countdown = after

    def disarm(self) -> None:
        self._countdown = None

    # -------------------------------------------------------------- crashing

    def crash_states(self, kinds: Sequence[str] = CRASH_KINDS) -> list[CrashState]:
        """The states a crash at this moment can leave (duplicates included)."""
        return list(crash_states_of(self.catch_up(), kinds, self.limits))

    def process_crash(self) -> CrashState:
        """The state a SIGKILL at this moment leaves."""
        return next(crash_states_of(self.catch_up(), ("process",), self.limits))

    def power_loss(self) -> CrashState:
        """The state a power cut leaves if nothing pending reached the disk."""
        durable = self.catch_up().durable()
        return CrashState("power/prefix", "no pending op", durable.image)

    def restart(self, state: CrashState) -> MemoryFileSystem:
        """Continue from ``state`` with a fresh file system (returned and kept as ``fs``)."""
        if state.tracker is not None:
            self.tracker = state.tracker.copy()
        else:
            self.tracker = Tracker.from_image(state.image)
        self.fs = state.filesystem()
        self.fs.hook = self._hook
        self._seen = 0
        self._countdown = None
        self.crashed = False
        return self.fs
