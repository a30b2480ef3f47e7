"""The checker of seglog's crash workloads: reopens every crash state and checks it.

A ``Checker`` runs a workload through a ``Driver``, takes every crash state at
every file operation, reopens each one and checks it against the history, then
probes further: crashes during that recovery, a second recovery (it must
change nothing), and a write after recovery that must survive the next crash.
Recovery outcomes are cached per distinct disk image, so many crash states
cost one recovery.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from engine.engine import Engine
from engine.fs import FileSystem
from engine.hints import HINT_SUFFIX
from engine.options import SyncMode
from engine.testing.actions import (
    PATH,
    PROBE_KEY,
    PROBE_VALUE,
    SEGMENT_SIZE,
    Action,
    Wrap,
    open_engine,
    read_store,
)
from engine.testing.clock import ManualClock
from engine.testing.driver import Driver
from engine.testing.memfs import MemoryFileSystem, Op
from engine.testing.oracle import Bounds, History, Model
from engine.testing.simulator import (
    CRASH_KINDS,
    CrashSimulator,
    CrashState,
    Limits,
    crash_states_of,
)
from engine.testing.tracker import DiskImage, Tracker

#: Crash kinds tried at every file operation of a recovery.
RECOVERY_CRASH_KINDS: Final = ("process", "power/prefix", "power/torn-cut", "power/drop-one")


@dataclass
class Violation:
    """One broken promise, with everything needed to reproduce it."""

    workload: str
    where: str
    kind: str
    detail: str
    problems: list[str]

    def __str__(self) -> str:
        return (
            f"{self.workload} | crash {self.where} | {self.kind}: {self.detail}\n    "
            + "\n    ".join(self.problems)
        )


@dataclass
class Outcome:
    """What reopening one crash state gave: contents or an error, plus follow-up problems."""

    store: dict[bytes, bytes] | None
    error: str | None = None
    #: Problems that hold whatever the bounds: idempotence, writes after recovery.
    problems: list[str] = field(default_factory=list)
    #: Contents after crashes during this recovery: description, power lost?, contents.
    alternates: list[tuple[str, bool, dict[bytes, bytes] | str]] = field(default_factory=list)


@dataclass
class Figures:
    """What a run covered."""

    crash_states: int = 0
    workloads: int = 0
    recoveries: int = 0
    seconds: float = 0.0
    images: set[int] = field(default_factory=set)
    kinds: Counter[str] = field(default_factory=Counter)
    violations: list[Violation] = field(default_factory=list)

    @property
    def distinct_images(self) -> int:
        return len(self.images)

    def merge(self, other: Figures) -> None:
        self.crash_states += other.crash_states
        self.workloads += other.workloads
        self.recoveries += other.recoveries
        self.seconds += other.seconds
        self.images |= other.images
        self.kinds.update(other.kinds)
        self.violations.extend(other.violations)

    def summary(self) -> str:
        rate = self.crash_states / self.seconds if self.seconds else 0.0
        return (
            f"{self.crash_states} crash states ({self.distinct_images} distinct disk images), "
            f"{self.workloads} workloads, {self.recoveries} recoveries, "
            f"{len(self.violations)} violations, {self.seconds:.1f}s ({rate:,.0f} states/s)"
        )


class Checker:
    """Reopens crash states and checks them; caches outcomes per distinct state."""

    def __init__(
        self,
        *,
        sync: SyncMode,
        segment_size: int = SEGMENT_SIZE,
        kinds: Sequence[str] = CRASH_KINDS,
        recovery_crashes: bool = True,
        limits: Limits | None = None,
        wrap: Wrap | None = None,
        figures: Figures | None = None,
    ) -> None:
        self.sync: SyncMode = sync
        self.segment_size = segment_size
        self.kinds = kinds
        self.recovery_crashes = recovery_crashes
        self.limits = limits or Limits()
        self.wrap = wrap
        self.figures = figures or Figures()
        self._cache: dict[tuple[object, ...], Outcome] = {}
        self._prologues: dict[tuple[Action, ...], tuple[DiskImage, Model, float]] = {}
        self._reads: dict[tuple[object, ...], dict[bytes, bytes] | str] = {}

    # --------------------------------------------------------------- workloads

    def run_workload(
        self,
        actions: Sequence[Action],
        *,
        prologue: Sequence[Action] = (),
        stop_early: bool = False,
    ) -> list[Violation]:
        """Run ``prologue`` then ``actions``, crashing at every file operation of ``actions``."""
        started = time.perf_counter()
        name = " ; ".join(str(a) for a in actions) or "(open only)"
        if prologue:
            name = "[" + " ; ".join(str(a) for a in prologue) + "] " + name
        image, model, clock_now = self._prologue(tuple(prologue))
        sim = CrashSimulator(image, limits=self.limits)
        driver = Driver(
            sim,
            sync=self.sync,
            history=History.starting_from(model),
            clock=ManualClock(clock_now),
            segment_size=self.segment_size,
            wrap=self.wrap,
        )
        found: list[Violation] = []
        try:
            driver.open()
            for action in actions:
                driver.run(action)
        except Exception as exc:  # the workload itself must run on a healthy store
            found.append(Violation(name, "while running", "-", "-", [f"raised {exc!r}"]))
        else:
            found = self.check_journal(name, image, sim.fs.journal, driver, stop_early=stop_early)
        self.figures.workloads += 1
        self.figures.violations.extend(found)
        self.figures.seconds += time.perf_counter() - started
        return found

    def _prologue(self, prologue: tuple[Action, ...]) -> tuple[DiskImage, Model, float]:
        cached = self._prologues.get(prologue)
        if cached is not None:
            return cached
        sim = CrashSimulator()
        clock = ManualClock()
        driver = Driver(sim, sync=self.sync, clock=clock, segment_size=self.segment_size)
        if prologue:
            driver.open()
            for action in prologue:
                driver.run(action)
            assert driver.db is not None
            driver.db.close()
        result = (sim.process_crash().image, dict(driver.history.current), clock.now)
        self._prologues[prologue] = result
        return result

    def check_journal(
        self,
        name: str,
        image: DiskImage,
        journal: Sequence[Op],
        driver: Driver,
        *,
        stop_early: bool = False,
    ) -> list[Violation]:
        """Crash at every position of ``journal`` (which started from ``image``) and check."""
        tracker = Tracker.from_image(image)
        history = driver.history
        found: list[Violation] = []
        done = 0
        for position, process, power, where, inside in driver.crash_points():
            while done < position:
                tracker.apply(journal[done])
                done += 1
            for state in crash_states_of(tracker, self.kinds, self.limits, in_flight=inside):
                problems = self.check_state(state, history, process, power)
                if problems:
                    found.append(Violation(name, where, state.kind, state.detail, problems))
                    if stop_early:
                        return found
        return found

    # ------------------------------------------------------------ one state

    def check_state(
        self, state: CrashState, history: History, process: Bounds, power: Bounds
    ) -> list[str]:
        """Reopen ``state`` (cached) and check it against ``history``.

        ``process`` and ``power`` are the bounds for a process crash and a power
        cut at the moment of the crash; a power cut during the recovery of a
        process crash is held to the power bounds.
        """
        bounds = power if state.is_power_loss else process
        self.figures.crash_states += 1
        self.figures.kinds[state.kind] += 1
        key = (*state.key(), bounds.now)
        self.figures.images.add(hash(state.image))
        outcome = self._cache.get(key)
        if outcome is None:
            outcome = self._cache[key] = self.recover(state, history, bounds.now)
        if outcome.error is not None:
            return [f"reopen raised {outcome.error}"]
        assert outcome.store is not None
        problems = history.check(outcome.store, bounds) + outcome.problems
        for description, lost_power, alternate in outcome.alternates:
            if isinstance(alternate, str):
                problems.append(f"{description}: reopen raised {alternate}")
            else:
                held = power if lost_power else bounds
                problems += [f"{description}: {p}" for p in history.check(alternate, held)]
        return problems

    def _open(self, fs: MemoryFileSystem, now: float) -> Engine:
        self.figures.recoveries += 1
        engine_fs: FileSystem = self.wrap(fs) if self.wrap is not None else fs
        return open_engine(
            PATH, engine_fs, sync=self.sync, clock=ManualClock(now), segment_size=self.segment_size
        )

    def _reopen_read(
        self, state: CrashState, keys: set[bytes], now: float
    ) -> dict[bytes, bytes] | str:
        """Open ``state`` and read it (cached per distinct state); an error as a string."""
        key = (*state.key(), now, frozenset(keys))
        found = self._reads.get(key)
        if found is None:
            try:
                db = self._open(state.filesystem(), now)
                found = read_store(db, keys)
            except Exception as exc:
                found = repr(exc)
            self._reads[key] = found
        return found

    def recover(self, state: CrashState, history: History, now: float) -> Outcome:
        """Reopen ``state`` and probe: crashes during recovery, recovery twice, a new write."""
        keys = {k for s in history.states for k in s} | {PROBE_KEY}
        sim = CrashSimulator(limits=self.limits)
        sim.restart(state)
        try:
            db = self._open(sim.fs, now)
            store = read_store(db, keys)
        except Exception as exc:
            return Outcome(None, repr(exc))
        outcome = Outcome(store)
        hints = [path for path, _ in state.image.files if path.endswith(HINT_SUFFIX)]
        if hints:  # the index from hint files equals the index from a full scan
            scanned = CrashState("scan", "hints removed", lambda: _without(state.image, hints))
            got = self._reopen_read(scanned, keys, now)
            if got != store:
                outcome.problems.append(f"without its hint files the store shows {got!r}")
        recovery_ops = list(sim.fs.journal)
        if self.recovery_crashes and recovery_ops:
            tracker = state.tracker.copy() if state.tracker else Tracker.from_image(state.image)
            seen: set[tuple[bool, object]] = {(False, _frozen(store))}
            for j, op in enumerate(recovery_ops):
                for crashed in crash_states_of(tracker, RECOVERY_CRASH_KINDS, self.limits):
                    got = self._reopen_read(crashed, keys, now)
                    where = f"crash during recovery before {op[0]} (op {j}), {crashed.kind}"
                    if crashed.kind == "process" and got != store:
                        outcome.problems.append(f"{where}: recovery not idempotent: {got!r}")
                    distinct = (crashed.is_power_loss, _frozen(got))
                    if distinct not in seen:
                        seen.add(distinct)
                        outcome.alternates.append(
                            (f"{where}: {crashed.detail}", crashed.is_power_loss, got)
                        )
                tracker.apply(op)
        # Recovery is idempotent, and what it shows is durable: crash right after it.
        for crashed in (sim.process_crash(), sim.power_loss()):
            got = self._reopen_read(crashed, keys, now)
            if got != store:
                outcome.problems.append(
                    f"{crashed.kind} right after recovery changed the contents to {got!r}"
                )
        # The store takes writes after recovery, and they survive the next crash.
        try:
            value = PROBE_VALUE
            db.put(PROBE_KEY, value)
            db.sync()
        except Exception as exc:
            outcome.problems.append(f"write after recovery raised {exc!r}")
            return outcome
        expected = {**store, PROBE_KEY: value}
        for crashed in (sim.process_crash(), sim.power_loss()):
            got = self._reopen_read(crashed, keys, now)
            if got != expected:
                outcome.problems.append(
                    f"{crashed.kind} after a synced write following recovery left {got!r}"
                )
        return outcome


def _without(image: DiskImage, paths: list[str]) -> DiskImage:
    return DiskImage(tuple(f for f in image.files if f[0] not in paths), image.dirs)


def _frozen(contents: dict[bytes, bytes] | str) -> object:
    return contents if isinstance(contents, str) else frozenset(contents.items())
