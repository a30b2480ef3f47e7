"""Injected I/O errors: the CI workloads with one file operation failing, at every operation.

Each workload (every sync mode) runs once to count its file operations; then
again once per operation and per error (``EIO``, ``ENOSPC``, ``EACCES``), that
operation failing with that error before it changes anything; once per file
write, that write writing only half of its bytes (a short write, which POSIX
allows and the caller must finish); and once per ``pread``, that read
returning half (a short read). Stores into a shared mapping are not system
calls and cannot fail with an errno, so they are passed over. The oracle:

- every call returns, or raises a ``StorageError`` (no other exception); the
  run stops after the call that met the fault, whichever way it ended;
- the store then opens on the same files, no longer failing, and holds every
  acknowledged write: the contents equal the model after every acknowledged
  call, or after the one that raised as well (``History.check`` with the
  failed call in flight, the bounds of a process crash at that point); and
  a power cut at that point keeps every write the sync mode promised durable
  (so an fsync error reported as success is caught: its data is not on disk).

``python -m engine.testing.campaign`` prints the figures in its line
``faults injected: N at M distinct points, violations: V``.
"""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.errors import StorageError
from engine.options import SyncMode
from engine.testing.actions import (
    PATH,
    Action,
    open_engine,
    quiet_logs,
    read_store,
    vocabulary,
    workloads,
)
from engine.testing.clock import ManualClock
from engine.testing.driver import Driver
from engine.testing.memfs import Op
from engine.testing.oracle import Bounds, History, Model
from engine.testing.simulator import CrashSimulator

#: The errors injected, each at every file operation.
ERRORS: tuple[int, ...] = (errno.EIO, errno.ENOSPC, errno.EACCES)


@dataclass
class FaultFigures:
    """What a fault run did: faults injected, distinct (workload, operation) points, problems."""

    injected: int = 0
    points: int = 0
    workloads: int = 0
    raised: int = 0
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def merge(self, other: FaultFigures) -> None:
        self.injected += other.injected
        self.points += other.points
        self.workloads += other.workloads
        self.raised += other.raised
        self.seconds += other.seconds
        self.violations += other.violations

    def summary(self) -> str:
        return (
            f"faults injected: {self.injected} at {self.points} distinct points "
            f"({self.workloads} workloads, {self.raised} calls raised StorageError, "
            f"{self.seconds:.1f}s), violations: {len(self.violations)}"
        )


class Injector:
    """A file-system hook that fails operation ``target`` (counted from 0) with ``error``."""

    def __init__(self, target: int, error: int) -> None:
        self.target = target
        self.error = error
        self.seen = 0
        self.fired = False

    def __call__(self, op: Op, storing_to_mapping: bool) -> None:
        index, self.seen = self.seen, self.seen + 1
        # A store into a shared mapping cannot fail with an errno (its blocks were
        # reserved up front; a failure there would be a SIGBUS), so it is passed over.
        if index == self.target and not storing_to_mapping:
            self.fired = True
            raise OSError(self.error, f"injected {errno.errorcode[self.error]}", str(op[1]))


def run_faulty(
    actions: Sequence[Action],
    sync: SyncMode,
    injector: Injector | None,
    *,
    short_write: int | None = None,
    short_read: int | None = None,
) -> tuple[History, CrashSimulator, ManualClock, Exception | None]:
    """Open a store on a fresh in-memory disk and run ``actions`` with ``injector`` hooked in
    (or with file operation ``short_write`` writing half, or read ``short_read`` reading half).

    Returns the history, the disk, the clock and the exception that stopped the run.
    """
    sim = CrashSimulator()
    sim.fs.short_at, sim.fs.short_read_at = short_write, short_read
    follow = sim.fs.hook

    def hook(op: Op) -> None:
        if injector is not None:
            injector(op, sim.fs.storing_to_mapping)
        if follow is not None:
            follow(op)

    sim.fs.hook = hook
    clock = ManualClock()
    driver = Driver(sim, sync=sync, history=History(), clock=clock)
    try:
        driver.open()
        for action in actions:
            if injector is not None and injector.fired:
                break  # check right after the call that met the fault: it kept its promise?
            driver.run(action)
        else:
            if driver.db is not None and not (injector is not None and injector.fired):
                driver.db.close()
    except Exception as exc:
        return driver.history, sim, clock, exc
    return driver.history, sim, clock, None


def check_workload(actions: Sequence[Action], sync: SyncMode) -> FaultFigures:
    """Fail every file operation of one workload with every error; check each outcome."""
    figures = FaultFigures(workloads=1)
    name = f"sync={sync}: " + (" ; ".join(map(str, actions)) or "(open only)")
    history, sim, _, error = run_faulty(actions, sync, None)
    if error is not None:
        figures.violations.append(f"{name}: fails with no fault injected: {error!r}")
        return figures
    journal, reads = list(sim.fs.journal), sim.fs.reads
    figures.points = len(journal) + reads
    runs: list[tuple[str, Injector | None, int | None, int | None]] = []
    for target, op in enumerate(journal):
        for code in ERRORS:
            runs.append(
                (
                    f"{errno.errorcode[code]} at operation {target}",
                    Injector(target, code),
                    None,
                    None,
                )
            )
        if op[0] == "write":
            runs.append((f"a short write at operation {target}", None, target, None))
    runs += [(f"a short read at read {index}", None, None, index) for index in range(reads)]
    for label, injector, short_write, short_read in runs:
        history, sim, clock, error = run_faulty(
            actions, sync, injector, short_write=short_write, short_read=short_read
        )
        if injector is not None and not injector.fired:
            continue  # a store into a mapping: not a system call that can fail
        if short_write is not None and not _was_short(sim, journal, short_write):
            continue  # a store into a mapping: never short
        figures.injected += 1
        where = f"{name}: {label}"
        if error is not None and not isinstance(error, StorageError):
            figures.violations.append(f"{where}: raised {error!r}, not a StorageError")
            continue
        figures.raised += error is not None
        figures.violations += _reopen_and_check(where, history, sim, clock.now)
    return figures


def _was_short(sim: CrashSimulator, journal: list[Op], target: int) -> bool:
    """Whether operation ``target`` of the run was a file write shorter than in ``journal``."""
    ran = sim.fs.journal
    return (
        len(ran) > target
        and ran[target][0] == "write"
        and len(ran[target][3]) < len(journal[target][3])  # type: ignore[misc]
    )


def _reopen_and_check(where: str, history: History, sim: CrashSimulator, now: float) -> list[str]:
    """Open the files as the failed process left them, and as a power cut then would
    leave them, with no fault, and check both against the history."""
    problems = []
    top = len(history.labels)
    for state, low in ((sim.process_crash(), history.acked), (sim.power_loss(), history.durable)):
        try:
            db = open_engine(PATH, state.filesystem(), clock=ManualClock(now))
        except Exception as exc:
            problems.append(f"{where}, {state.kind}: the store does not reopen: {exc!r}")
            continue
        try:
            model: Model = history.current
            contents = read_store(db, model)
        finally:
            db.close()
        found = history.check(contents, Bounds(low, top, now))
        problems += [f"{where}, {state.kind}: {problem}" for problem in found]
    return problems


def run_faults(modes: Sequence[SyncMode], depth: int, *, batch: bool = True) -> FaultFigures:
    """Every workload of up to ``depth`` actions from an empty store, in every mode."""
    figures = FaultFigures()
    started = time.perf_counter()
    with quiet_logs():
        for mode in modes:
            for actions in workloads(vocabulary(batch=batch), depth):
                figures.merge(check_workload(actions, mode))
    figures.seconds = time.perf_counter() - started
    return figures


def depth_from_env(default: int = 2) -> int:
    """``SEGLOG_FAULT_DEPTH``: the longest workload the fault tier runs."""
    return int(os.environ.get("SEGLOG_FAULT_DEPTH", default))
