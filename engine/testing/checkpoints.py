"""Checkpoints in the crash simulator: one taken at every point of a workload, and crashed.

``CheckpointProbe`` runs a workload on a simulated store and, before every
file operation the engine performs outside its locks (between actions, and
inside them: between the steps of a compaction's rewrite, before a durable
write's fsync), takes a checkpoint. Each one must:

* leave the source untouched: the source's files hold the same bytes after
  it, and every operation it issued that changes anything names a path in
  the checkpoint's directory (it may fsync the source, nothing more);
* open as a store that equals the model after the action in flight if its
  sequence number covers that action, or before it otherwise;
* survive a crash at every one of its own file operations, under every crash
  kind: the directory is then missing or empty (the checkpoint had not
  begun), holds the ``CHECKPOINT-INCOMPLETE`` marker and is refused by
  ``Engine.open``, or is complete and equal to the state above. Never a
  silently partial copy.

Checkpoints taken while the compaction lock is held are skipped: that is
exactly what the lock keeps them from doing (they would wait for it).
"""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from engine.checkpoint import MARKER, IncompleteCheckpointError
from engine.engine import Engine
from engine.options import SyncMode
from engine.testing.actions import (
    PROBE_KEY,
    SEGMENT_SIZE,
    Action,
    open_engine,
    quiet_logs,
    read_store,
    vocabulary,
    workloads,
)
from engine.testing.campaign import Setting, Start, in_chunks
from engine.testing.clock import ManualClock
from engine.testing.driver import Driver
from engine.testing.memfs import Inode, Op
from engine.testing.oracle import visible
from engine.testing.simulator import CrashSimulator, Limits, crash_states_of
from engine.testing.tracker import DiskImage

#: Where the probe's checkpoints go (each removed once checked), and where one is opened.
CHECKPOINT: Final = "/checkpoint"
OPENED: Final = "/opened"
#: Crash kinds tried at every file operation of a checkpoint.
CHECKPOINT_CRASH_KINDS: Final = (
    "process",
    "power/prefix",
    "power/torn-cut",
    "power/drop-one",
    "power/dir-reorder",
    "power/dir-lost",
)
#: Operations that change a file system (an fsync changes nothing a reader sees).
_CHANGES: Final = frozenset(
    {"write", "allocate", "truncate", "create", "rename", "link", "unlink", "mkdir"}
)


@dataclass
class CheckpointFigures:
    """What a run covered, and what it found."""

    workloads: int = 0
    checkpoints: int = 0
    #: Checkpoints whose operations and bytes an earlier one had: their crashes are not redone.
    repeats: int = 0
    skipped_locked: int = 0
    crash_states: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def merge(self, other: CheckpointFigures) -> None:
        self.workloads += other.workloads
        self.checkpoints += other.checkpoints
        self.repeats += other.repeats
        self.skipped_locked += other.skipped_locked
        self.crash_states += other.crash_states
        self.outcomes.update(other.outcomes)
        self.problems.extend(other.problems)
        self.seconds += other.seconds

    def summary(self) -> str:
        seen = ", ".join(f"{n} {kind}" for kind, n in sorted(self.outcomes.items()))
        return (
            f"{self.workloads} workloads, {self.checkpoints} checkpoints "
            f"({self.repeats} repeats of an earlier one, whose crashes were not redone; "
            f"{self.skipped_locked} points skipped under the compaction lock), "
            f"{self.crash_states} crash states during checkpoints ({seen}), "
            f"{len(self.problems)} problems, {self.seconds:.1f}s"
        )


class CheckpointProbe:
    """Takes and checks checkpoints at every point of workloads (see the module)."""

    def __init__(
        self,
        *,
        sync: SyncMode,
        kinds: Sequence[str] = CHECKPOINT_CRASH_KINDS,
        limits: Limits | None = None,
        figures: CheckpointFigures | None = None,
    ) -> None:
        self.sync: SyncMode = sync
        self.kinds = kinds
        self.limits = limits or Limits()
        self.figures = figures or CheckpointFigures()
        self._opened: dict[tuple[DiskImage, float], dict[bytes, bytes] | str] = {}
        self._crashes_seen: set[tuple[object, ...]] = set()
        self._sim: CrashSimulator | None = None
        self._driver: Driver | None = None
        self._name = ""
        self._busy = False
        self._seq_before = 0

    def run(self, actions: Sequence[Action], *, prologue: Sequence[Action] = ()) -> list[str]:
        """Run ``prologue`` then ``actions``, checkpointing at every point of ``actions``."""
        started = time.perf_counter()
        found_before = len(self.figures.problems)
        self._name = " ; ".join(str(a) for a in actions) or "(open only)"
        if prologue:
            self._name = "[" + " ; ".join(str(a) for a in prologue) + "] " + self._name
        sim = self._sim = CrashSimulator(limits=self.limits)
        driver = self._driver = Driver(sim, sync=self.sync, clock=ManualClock())
        driver.open()
        for action in prologue:
            driver.run(action)
        follow = sim.fs.hook
        assert follow is not None

        def hook(op: Op) -> None:
            follow(op)
            self._point()

        sim.fs.hook = hook
        try:
            for action in actions:
                self._run(action)
            self._point()
        finally:
            sim.fs.hook = follow
        self.figures.workloads += 1
        self.figures.seconds += time.perf_counter() - started
        return self.figures.problems[found_before:]

    def _run(self, action: Action) -> None:
        """Run one action, noting the sequence number before it."""
        driver = self._driver
        assert driver is not None
        self._seq_before = _sequence(driver.db)
        self._point()
        driver.run(action)
        self._seq_before = _sequence(driver.db)

    def _point(self) -> None:
        """Before a file operation (or at the end): checkpoint, if the engine holds no lock."""
        driver, sim = self._driver, self._sim
        assert driver is not None and sim is not None
        db = driver.db
        if self._busy or db is None or db.closed or sim.crashed:
            return
        writer = db._writer
        if writer.lock.locked() or writer.sync_lock.locked() or writer.syncing:
            return  # inside a write, a rollover or an fsync: the checkpoint waits for those
        if writer.active is None:
            return  # closing (writing log hints): a checkpoint would be refused as closed
        if db._compactor._replacing.locked():
            self.figures.skipped_locked += 1
            return
        self._busy = True
        try:
            self._checkpoint(db, sim, driver.clock.now)
        finally:
            self._busy = False

    def _checkpoint(self, db: Engine, sim: CrashSimulator, now: float) -> None:
        history = self._driver.history  # type: ignore[union-attr]
        # The model before the action in flight (if any) and after it.
        before, after = history.current, history.states[-1]
        figures = self.figures
        figures.checkpoints += 1
        dest = CHECKPOINT
        where = f"{self._name} | checkpoint {figures.checkpoints}"
        source = _files_under(sim.fs.files, db.path)
        tracker = sim.catch_up().copy()
        start = len(sim.fs.journal)
        report = db.checkpoint(dest)
        ops = sim.fs.journal[start:]
        if _files_under(sim.fs.files, db.path) != source:
            figures.problems.append(f"{where}: the source's files changed")
        for op in ops:
            target = str(op[2] if op[0] in ("link", "rename") else op[1])
            if op[0] in _CHANGES and not target.startswith(dest + "/") and target != dest:
                figures.problems.append(f"{where}: {op[0]} {target} outside the checkpoint")
        expected = visible(after if report.sequence > self._seq_before else before, now)
        keys = set(before) | set(after) | {PROBE_KEY}
        image = _image_of(_files_under(sim.fs.files, dest), dest)
        got = self._open(image, now, keys)
        if got != expected:
            figures.problems.append(f"{where} (seq {report.sequence}): {got!r} != {expected!r}")
        # The same operations on the same bytes leave the same crash states: check them once.
        crashes = (image, now, tuple(ops))
        if crashes in self._crashes_seen:
            figures.repeats += 1
            _forget(sim, dest)
            return
        self._crashes_seen.add(crashes)
        # Crash states of the checkpoint's own operations: the source's pending operations
        # are left out (the workload's own crash tests cover them), except writes to a
        # file the checkpoint links, which would be lost from the copy too.
        linked = {tracker.names[str(op[1])] for op in ops if op[0] == "link"}
        tracker.pending = [p for p in tracker.pending if p.is_data and p.ino in linked]
        for k, op in enumerate(ops):
            for state in crash_states_of(tracker, self.kinds, self.limits):
                figures.crash_states += 1
                problem = self._crashed(state.image, dest, now, keys, expected)
                if problem:
                    figures.problems.append(
                        f"{where}: crash before {op[0]} (op {k}), {state.kind} {state.detail}: "
                        + problem
                    )
            tracker.apply(op)
        _forget(sim, dest)

    def _crashed(
        self,
        image: DiskImage,
        dest: str,
        now: float,
        keys: set[bytes],
        expected: dict[bytes, bytes],
    ) -> str:
        """What is wrong with a checkpoint directory a crash left ('' if nothing)."""
        files = dict(image.files)
        names = {os.path.basename(p) for p in files if os.path.dirname(p) == dest}
        if not names:
            self.figures.outcomes["not begun"] += 1
            return ""
        opened = self._open(_image_of(files, dest), now, keys)
        if MARKER in names:
            self.figures.outcomes["marked incomplete"] += 1
            if isinstance(opened, str) and IncompleteCheckpointError.__name__ in opened:
                return ""
            return f"marked incomplete but open gave {opened!r}"
        self.figures.outcomes["complete"] += 1
        return "" if opened == expected else f"complete but holds {opened!r} != {expected!r}"

    def _open(self, image: DiskImage, now: float, keys: set[bytes]) -> dict[bytes, bytes] | str:
        """Open a checkpoint image and read it (cached); an error as its repr."""
        cached = self._opened.get((image, now))
        if cached is None:
            try:
                fs = image.filesystem()
                db = open_engine(
                    OPENED, fs, sync=self.sync, clock=ManualClock(now), segment_size=SEGMENT_SIZE
                )
                try:
                    cached = read_store(db, keys)
                finally:
                    db.close()
            except Exception as exc:
                cached = repr(exc)
            self._opened[(image, now)] = cached
        return cached


def _forget(sim: CrashSimulator, directory: str) -> None:
    """Remove a checked checkpoint from the simulation, without a trace in the journal.

    The next checkpoint goes to the same place, and crash images stay small.
    """
    tracker = sim.catch_up()

    def inside(path: str) -> bool:
        return path == directory or path.startswith(directory + "/")

    for names in (sim.fs.files, sim.fs.durable_files, tracker.names, tracker.durable_names):
        for path in [p for p in names if inside(p)]:
            del names[path]
    for dirs in (sim.fs.dirs, tracker.dirs, tracker.durable_dirs):
        dirs.discard(directory)
    tracker.pending = [p for p in tracker.pending if not (inside(p.path) or inside(p.dst))]


def _sequence(db: Engine | None) -> int:
    return int(db.stats()["sequence"]) if db is not None else 0


def _files_under(files: Mapping[str, Inode], directory: str) -> dict[str, bytes]:
    """The bytes of every file directly in ``directory``."""
    return {p: bytes(i.data) for p, i in files.items() if os.path.dirname(p) == directory}


def _image_of(files: Mapping[str, bytes], directory: str) -> DiskImage:
    """The files of ``directory``, moved to ``OPENED``: equal checkpoints share a cache entry."""
    moved = {
        f"{OPENED}/{os.path.basename(p)}": data
        for p, data in files.items()
        if os.path.dirname(p) == directory
    }
    return DiskImage.of(moved, [OPENED])


def _probe_chunk(args: tuple[Setting, SyncMode, Start]) -> CheckpointFigures:
    setting, mode, (prologue, depth) = args
    probe = CheckpointProbe(sync=mode, limits=setting.limits)
    with quiet_logs():
        for workload in workloads(vocabulary(batch=setting.batch), depth):
            probe.run(workload, prologue=prologue)
    return probe.figures


def checkpoint_campaign(setting: Setting, *, processes: int = 1) -> CheckpointFigures:
    """Every workload of ``setting`` (the crash campaign's), checkpointed at every point."""
    started = time.perf_counter()
    figures = CheckpointFigures()
    for part in in_chunks(setting, _probe_chunk, processes):
        figures.merge(part)
    figures.seconds = time.perf_counter() - started
    return figures


__all__ = ["CheckpointFigures", "CheckpointProbe", "checkpoint_campaign"]
