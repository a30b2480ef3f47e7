"""Workloads against seglog's engine on a crash simulator, and the checks after each crash.

An ``Action`` is one call a workload makes (put, put with a TTL, delete,
batch, sync, clock advance, reopen, compact). A ``Driver`` runs actions on an
``Engine`` over a ``CrashSimulator`` and keeps the oracle's ``History``. A
``Checker`` takes crash states, reopens each one and checks it against the
history, then probes further: crashes during that recovery, a second recovery
(it must change nothing), and a write after recovery that must survive the
next crash. Recovery outcomes are cached per distinct disk image, so many crash
states cost one recovery.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from engine.engine import Engine
from engine.fs import FileSystem
from engine.hints import HINT_SUFFIX
from engine.options import SyncMode
from engine.testing.clock import ManualClock
from engine.testing.memfs import MemoryFileSystem, Op
from engine.testing.oracle import Bounds, History, Model, visible
from engine.testing.simulator import (
    CRASH_KINDS,
    CrashSimulator,
    CrashState,
    DiskImage,
    Limits,
    Tracker,
    crash_states_of,
)

PATH: Final = "/db"
#: Record sizes are chosen so that a segment holds two puts: rollovers happen early.
SEGMENT_SIZE: Final = 128
VALUE_SIZE: Final = 26
TTL: Final = 5.0
ADVANCE: Final = 10.0
#: The write after recovery: the same size as a workload's put, so that it lands exactly
#: where a put recovery dropped had been (and a tail recovery failed to cut shows).
PROBE_KEY: Final = b"z"
PROBE_VALUE: Final = b"after recovery".ljust(VALUE_SIZE, b".")
#: Crash kinds tried at every file operation of a recovery.
RECOVERY_CRASH_KINDS: Final = ("process", "power/prefix", "power/torn-cut", "power/drop-one")

Wrap = Callable[[FileSystem], FileSystem]


def open_engine(path: str, fs: FileSystem, **options: Any) -> Engine:
    """``Engine.open`` with no background work the simulation cannot schedule.

    Automatic compaction is switched off: compaction runs as an explicit
    ``compact`` action instead, at a known point.
    """
    options.setdefault("auto_compact", False)
    return Engine.open(path, fs=fs, **options)


@dataclass(frozen=True)
class Action:
    """One call of a workload. Values are made unique when the action runs."""

    kind: str
    key: bytes = b""
    #: For a batch: (key, is_put) pairs.
    items: tuple[tuple[bytes, bool], ...] = ()

    def __str__(self) -> str:
        if self.kind == "batch":
            return (
                "batch(" + " ".join(f"{'+' if p else '-'}{k.decode()}" for k, p in self.items) + ")"
            )
        return f"{self.kind} {self.key.decode()}" if self.key else self.kind


def vocabulary(
    keys: Sequence[bytes] = (b"a", b"b"), *, compact: bool = True, batch: bool = False
) -> list[Action]:
    """The actions of the exhaustive tier: every write kind on every key, and the rest."""
    actions = [Action(kind, key) for kind in ("put", "put_ttl", "delete") for key in keys]
    actions += [Action("sync"), Action("advance"), Action("reopen")]
    if compact:
        actions.append(Action("compact"))
    if batch:
        actions.append(Action("batch", items=((keys[0], True), (keys[-1], False))))
    return actions


def workloads(actions: Sequence[Action], max_length: int) -> Iterator[tuple[Action, ...]]:
    """Every sequence of ``actions`` of length 0 to ``max_length``."""
    for length in range(max_length + 1):
        yield from itertools.product(actions, repeat=length)


def read_store(db: Engine, keys: Iterable[bytes]) -> dict[bytes, bytes]:
    """What the store shows: a full scan, cross-checked key by key with ``get``."""
    contents = dict(db.scan())
    for key in set(keys) | set(contents):
        got = db.get(key)
        if got != contents.get(key):
            raise AssertionError(f"get({key!r}) = {got!r} but scan shows {contents.get(key)!r}")
    return contents


# ------------------------------------------------------------------- the driver


@dataclass
class Mark:
    """Where one action's file operations start and end in the journal, and its bounds."""

    action: str
    start: int
    end: int
    acked: int
    durable_before: int
    durable_after: int
    now: float


class Driver:
    """Runs actions on an engine over a simulator, keeping the history and journal marks."""

    def __init__(
        self,
        sim: CrashSimulator,
        *,
        sync: SyncMode,
        history: History | None = None,
        clock: ManualClock | None = None,
        segment_size: int = SEGMENT_SIZE,
        wrap: Wrap | None = None,
        path: str = PATH,
    ) -> None:
        self.sim = sim
        self.sync: SyncMode = sync
        self.history = history or History()
        self.clock = clock or ManualClock()
        self.segment_size = segment_size
        self.wrap = wrap
        self.path = path
        self.db: Engine | None = None
        self.marks: list[Mark] = []
        self.serial = itertools.count()

    def engine_fs(self, fs: MemoryFileSystem) -> FileSystem:
        return self.wrap(fs) if self.wrap is not None else fs

    def open_engine(self, fs: MemoryFileSystem) -> Engine:
        return open_engine(
            self.path,
            self.engine_fs(fs),
            sync=self.sync,
            clock=self.clock,
            segment_size=self.segment_size,
        )

    def value(self, key: bytes) -> bytes:
        return f"{key.decode()}={next(self.serial)}:".encode().ljust(VALUE_SIZE, b".")

    def open(self) -> None:
        self._run("open", dict(self.history.current), False, self._open)

    def _open(self) -> None:
        self.db = self.open_engine(self.sim.fs)

    def run(self, action: Action) -> None:
        """Run ``action``; the history learns it first as in flight, then acknowledged."""
        model: Model = dict(self.history.current)
        now = self.clock.now
        always = self.sync == "always"
        kind = action.kind
        if kind == "reopen":
            self._run("close", model, True, self._close)
            self.open()
            return
        db = self.db
        assert db is not None
        call: Callable[[], Any]
        durable = False
        if kind == "put":
            value = self.value(action.key)
            model[action.key] = (value, 0.0)
            call, durable = (lambda: db.put(action.key, value)), always
        elif kind == "put_ttl":
            value = self.value(action.key)
            model[action.key] = (value, now + TTL)
            call, durable = (lambda: db.put(action.key, value, ttl=TTL)), always
        elif kind == "delete":
            durable = always and action.key in visible(model, now)
            model.pop(action.key, None)
            call = lambda: db.delete(action.key)  # noqa: E731
        elif kind == "batch":
            staged = []
            for key, is_put in action.items:
                value = self.value(key) if is_put else b""
                staged.append((key, value if is_put else None))
                if is_put:
                    model[key] = (value, 0.0)
                else:
                    model.pop(key, None)
            call, durable = (lambda: _commit(db, staged)), always
        elif kind == "sync":
            call, durable = db.sync, True
        elif kind == "advance":
            call = lambda: self.clock.advance(ADVANCE)  # noqa: E731
        elif kind == "compact":
            call = getattr(db, "compact")  # noqa: B009
        else:
            raise ValueError(f"unknown action {action}")
        self._run(str(action), model, durable, call)

    def _close(self) -> None:
        assert self.db is not None
        self.db.close()
        self.db = None

    def _run(self, label: str, model: Model, durable: bool, call: Callable[[], Any]) -> None:
        history = self.history
        start = self.sim.ops
        before, now = history.durable, self.clock.now
        history.begin(label, model)
        call()
        history.ack(durable=durable)
        self.marks.append(
            Mark(label, start, self.sim.ops, history.acked - 1, before, history.durable, now)
        )

    def crash_points(self) -> Iterator[tuple[int, Bounds, Bounds, str]]:
        """Every journal position with its (process, power) bounds and a description."""
        position = 0
        acked, durable, now = self.history.acked, self.history.durable, self.clock.now
        if self.marks:
            first = self.marks[0]
            acked, durable, now = first.acked, first.durable_before, first.now
        for mark in self.marks:
            while position < mark.end:
                inside = position > mark.start
                high = mark.acked + (1 if inside else 0)
                where = f"inside {mark.action!r} after {position - mark.start} ops"
                if not inside:
                    where = f"before {mark.action!r}"
                yield (
                    position,
                    Bounds(mark.acked, high, mark.now),
                    Bounds(mark.durable_before, high, mark.now),
                    where,
                )
                position += 1
            acked, durable, now = mark.acked + 1, mark.durable_after, mark.now
        yield position, Bounds(acked, acked, now), Bounds(durable, acked, now), "at the end"


def _commit(db: Engine, staged: list[tuple[bytes, bytes | None]]) -> None:
    with db.batch() as batch:
        for key, value in staged:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)


# ------------------------------------------------------------------ the checker


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
        for position, process, power, where in driver.crash_points():
            while done < position:
                tracker.apply(journal[done])
                done += 1
            for state in crash_states_of(tracker, self.kinds, self.limits):
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


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence seglog's recovery warnings while thousands of crash states are opened."""
    import logging

    logger = logging.getLogger("seglog")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
