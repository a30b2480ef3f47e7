"""The crash simulator: every disk state a real machine could be left in after a crash.

A ``CrashSimulator`` owns a ``MemoryFileSystem`` and reads its journal of
operations. Its ``Tracker`` (``engine.testing.tracker``) follows, for every
file, what a power cut would keep (the bytes as of the file's last fsync, the
names as of each directory's last fsync) and the operations still pending
since then, in the order they were issued. From that it produces crash states:

``process``
    SIGKILL: the OS keeps everything written, stores into shared mappings
    included. Nothing becomes durable by the crash itself, so the simulator
    keeps tracking what is still pending for the next power cut.
``process/torn-store``
    SIGKILL during the last write into a file's existing bytes (a store into
    a mapping): only a prefix of it, or only a suffix, arrived. ``memcpy`` does
    not fill memory in order, so both happen. Only when the caller says that
    write is still in flight (``in_flight=True``): once the call that made it
    has returned, the write is whole.
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
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Final

from engine.testing.memfs import MemoryFileSystem, Op
from engine.testing.tracker import TORN_KINDS, DiskImage, Pending, Tear, Tracker

#: Every kind of crash state ``crash_states`` can produce.
CRASH_KINDS: Final = (
    "process",
    "process/torn-store",
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


def _cuts(size: int, limit: int) -> list[int]:
    """Where a write of ``size`` bytes is torn: after its first byte, halfway, before its last."""
    return sorted({1, size // 2, size - 1} - {0, size})[:limit]


class SimulatedCrash(BaseException):
    """Raised by an armed simulator at the operation where the machine "stops".

    A ``BaseException`` so that no ``except Exception`` in the code under test
    can swallow it and carry on as if the machine were still running.
    """


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
    tracker: Tracker,
    kinds: Sequence[str] = CRASH_KINDS,
    limits: Limits = Limits(),
    *,
    in_flight: bool = False,
) -> Iterator[CrashState]:
    """Every crash state of ``tracker`` of the given kinds (duplicates included).

    ``in_flight`` says the last operation belongs to a call that has not
    returned, so it may be torn (``process/torn-store``).

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
    if in_flight and "process/torn-store" in wanted and tracker.last_store is not None:
        size = len(pending[-1].data)
        for cut in _cuts(size, limits.torn_cuts):
            for suffix in (False, True):
                torn = tracker.torn_store(cut, suffix=suffix)
                part = "after" if suffix else "before"
                detail = f"last write ({size} bytes) stored only {part} byte {cut}"
                yield CrashState("process/torn-store", detail, torn.visible, torn)
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
                cuts = _cuts(size, limits.torn_cuts)
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
