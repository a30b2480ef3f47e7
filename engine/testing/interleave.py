"""The crash simulator with several processes: shared writers and a reader, interleaved.

Each simulated process is a thread running its own engine (``shared=True`` or
``readonly=True``) on one ``MemoryFileSystem``, whose inodes are shared the
way the page cache is. A ``Scheduler`` lets exactly one process run at a
time and switches at every file operation, reads included (the file
system's ``gate``), choosing the next process with a seeded RNG; waiting for
a lock is a switch too. So a seed is one interleaving of the processes' file
operations, and every operation is a point where the scheduler can crash:

- *one process* (``process``): it dies there (its locks go, as the kernel
  drops a dead process's ``flock``s; nothing it would do next happens) and
  the others carry on to the end;
- *the machine* (``machine``): every process dies there, and every state a
  power cut could leave (``CrashSimulator``'s ``power/*`` kinds) is opened
  alone and checked.

The workload: writer ``w`` writes ``N`` batches, each ``k{w}:{i % K}`` =
``"{w}:{i}"`` and ``last{w}`` = ``"{i} {seen}"``, where ``seen`` lists the
other writers' ``last`` counters it read just before; one writer compacts
midway; a reader scans. The oracle:

- every batch acknowledged (``sync="always"``) survives, in every state;
- each writer's keys agree with its ``last`` (batches are whole);
- every state a reader shows is a prefix of the merged history: counters
  never go back, and a writer's ``seen`` counters are all there too (what it
  read before its write precedes the write in the history).

``python -m engine.testing.interleave [--seeds N]`` runs the tier and prints
its figures; ``tests/crash/test_interleave.py`` runs a CI-sized part.
"""

from __future__ import annotations

import argparse
import functools
import random
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from engine.engine import Engine
from engine.testing.legacy import downgrade, misplaced_records
from engine.testing.memfs import MemoryFileSystem
from engine.testing.simulator import POWER_KINDS, CrashSimulator, CrashState

DIRECTORY: Final = "/db"
#: Small segments: a few batches roll over, so crashes land in rollovers too.
SEGMENT_SIZE: Final = 256
KEYS: Final = 4
#: Power-cut states opened per machine crash point (sampled with the seed's RNG).
STATES_PER_CRASH: Final = 12


class ProcessKilled(BaseException):
    """Raised in a simulated process at the file operation where it dies."""


@dataclass
class Process:
    """One simulated process: its program, and what the scheduler knows of it."""

    name: str
    program: Callable[[], None]
    killed: bool = False
    done: bool = False
    error: BaseException | None = None
    thread: threading.Thread | None = None


class Scheduler:
    """Runs processes one at a time, switching at every file operation; crashes at step ``at``."""

    def __init__(
        self,
        sim: CrashSimulator,
        rng: random.Random,
        crash: tuple[str, int] | None = None,
    ) -> None:
        self.sim = sim
        self.rng = rng
        self.crash = crash
        self.steps = 0
        self.machine_states: list[CrashState] | None = None
        self._cond = threading.Condition()
        self._turn: Process | None = None
        self._processes: list[Process] = []
        self._by_thread: dict[int, Process] = {}
        fs = sim.fs
        fs.gate = self.gate
        fs.wait = self.gate
        fs.lock_owner = self._current

    def _current(self) -> Process | None:
        return self._by_thread.get(threading.get_ident())

    def run(self, processes: list[Process]) -> None:
        """Run ``processes`` to their end (or death), interleaved; return when all are done."""
        self._processes = processes
        for process in processes:
            process.thread = threading.Thread(target=self._body, args=(process,), daemon=True)
        with self._cond:
            self._turn = self.rng.choice(processes)
            for process in processes:
                assert process.thread is not None
                process.thread.start()
        for process in processes:
            assert process.thread is not None
            process.thread.join(120)
            if process.thread.is_alive():
                raise RuntimeError(f"simulated process {process.name} did not finish")

    def _body(self, process: Process) -> None:
        self._by_thread[threading.get_ident()] = process
        with self._cond:
            while self._turn is not process:
                self._cond.wait()
        try:
            if not process.killed:
                process.program()
        except ProcessKilled:
            pass
        except BaseException as exc:  # reported by the oracle
            process.error = exc
        finally:
            with self._cond:
                process.done = True
                self._pass_turn()

    def gate(self) -> None:
        """A file operation is about to happen: maybe crash, then let some process run."""
        process = self._current()
        if process is None:
            return  # not a simulated process (setting up, checking)
        if process.killed:
            raise ProcessKilled(process.name)
        with self._cond:
            self.steps += 1
            if self.crash is not None and self.steps == self.crash[1]:
                self._crash(process, self.crash[0])
            self._pass_turn()
            while self._turn is not process:
                self._cond.wait()
        if process.killed:
            raise ProcessKilled(process.name)

    def _crash(self, process: Process, kind: str) -> None:
        if kind == "machine":
            self.machine_states = self.sim.crash_states(POWER_KINDS)
            victims = self._processes
        else:
            victims = [process]
        for victim in victims:
            victim.killed = True
            for lock in self.sim.fs.lock_objects:
                if lock.owner is victim:
                    lock.release()  # the kernel drops a dead process's flocks

    def _pass_turn(self) -> None:
        running = [p for p in self._processes if not p.done]
        self._turn = self.rng.choice(running) if running else None
        self._cond.notify_all()


# ------------------------------------------------------------------ the workload


def _key(writer: int, i: int) -> bytes:
    return f"k{writer}:{i % KEYS}".encode()


def _last(writer: int) -> bytes:
    return f"last{writer}".encode()


def _open(fs: MemoryFileSystem, **options: object) -> Engine:
    return Engine.open(
        DIRECTORY,
        fs=fs,
        sync="always",
        segment_size=SEGMENT_SIZE,
        auto_compact=False,
        **options,  # type: ignore[arg-type]
    )


@dataclass
class History:
    """What the processes acknowledged and what the readers saw wrong."""

    writers: int
    acked: list[int] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.acked = [0] * self.writers

    def check_state(self, state: dict[bytes, bytes], where: str, seen: list[int]) -> None:
        """``state`` (all keys) must be a prefix of the merged history; ``seen`` only grows."""
        counters = [_counter(state.get(_last(w))) for w in range(self.writers)]
        for w, (last, before) in enumerate(zip(counters, seen, strict=True)):
            if last < before:
                self.violations.append(f"{where}: last{w} went back from {before} to {last}")
            seen[w] = max(before, last)
            if last:
                value = state.get(_key(w, last))
                if value != f"{w}:{last}".encode():
                    self.violations.append(
                        f"{where}: last{w}={last} but {_key(w, last)!r}={value!r}"
                    )
                for other, needed in _seen(state.get(_last(w))).items():
                    if counters[other] < needed:
                        self.violations.append(
                            f"{where}: writer {w} had read last{other}={needed} before batch "
                            f"{last}, but the state shows {counters[other]}"
                        )

    def check_store(self, fs: MemoryFileSystem, where: str) -> None:
        """Open the store alone on ``fs``: every acknowledged batch, a consistent state."""
        try:
            with _open(fs) as db:
                state = dict(db.scan())
        except Exception as exc:
            self.violations.append(f"{where}: the store does not open: {exc!r}")
            return
        self.check_state(state, where, [0] * self.writers)
        for w, acked in enumerate(self.acked):
            last = _counter(state.get(_last(w)))
            if last < acked:
                self.violations.append(f"{where}: last{w}={last} but {acked} was acknowledged")


def _counter(value: bytes | None) -> int:
    return int(value.split()[0]) if value else 0


def _seen(value: bytes | None) -> dict[int, int]:
    if not value:
        return {}
    pairs = (part.split(b"=") for part in value.split()[1:])
    return {int(w): int(n) for w, n in pairs}


def workload(
    fs: MemoryFileSystem, history: History, *, batches: int, readers: int
) -> list[Process]:
    """The processes: ``history.writers`` writers (writer 0 compacts midway) and readers."""
    writers = history.writers

    def writer(w: int) -> None:
        db = _open(fs, shared=True)
        for i in range(1, batches + 1):
            seen = " ".join(f"{o}={_counter(db.get(_last(o)))}" for o in range(writers) if o != w)
            with db.batch() as batch:
                batch.put(_key(w, i), f"{w}:{i}".encode())
                batch.put(_last(w), f"{i} {seen}".encode())
            history.acked[w] = i
            if w == 0 and i == batches // 2:
                db.compact()
        db.close()

    def reader(r: int) -> None:
        db = _open(fs, readonly=True)
        seen = [0] * writers
        for _ in range(batches * writers):
            history.check_state(dict(db.scan()), f"reader {r}", seen)
        db.close()

    processes = [Process(f"writer {w}", functools.partial(writer, w)) for w in range(writers)]
    processes += [Process(f"reader {r}", functools.partial(reader, r)) for r in range(readers)]
    return processes


# ------------------------------------------------------------------ running


@dataclass
class Figures:
    """What a campaign ran and found."""

    interleavings: int = 0
    steps: int = 0
    process_crashes: int = 0
    machine_crashes: int = 0
    power_states: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"interleaved processes: {self.interleavings} interleavings ({self.steps} switch "
            f"points), {self.process_crashes} one-process crashes, {self.machine_crashes} "
            f"machine crashes ({self.power_states} power-cut states opened), "
            f"{len(self.violations)} violations"
        )


def run_once(
    seed: int,
    crash: tuple[str, int] | None,
    figures: Figures,
    *,
    writers: int = 2,
    readers: int = 1,
    batches: int = 4,
    legacy: bool = False,
) -> int:
    """One interleaving (and crash, if given), checked; returns its number of switch points.

    ``legacy`` starts from a store an older seglog created (format version 1):
    the writers must roll over to a version-2 segment before their first append.
    """
    sim = CrashSimulator()
    sim.fs.makedirs(DIRECTORY)
    _open(sim.fs, shared=True).close()  # the store exists before the reader opens it
    if legacy:
        downgrade(sim.fs, DIRECTORY)
    history = History(writers)
    rng = random.Random(seed)
    scheduler = Scheduler(sim, rng, crash)
    processes = workload(sim.fs, history, batches=batches, readers=readers)
    scheduler.run(processes)
    where = f"seed {seed}, crash {crash}"
    for process in processes:
        if process.error is not None:
            figures.violations.append(f"{where}: {process.name} failed: {process.error!r}")
    for violation in history.violations:
        figures.violations.append(f"{where}: {violation}")
    history.violations = []
    if scheduler.machine_states is not None:
        states = scheduler.machine_states
        sample = rng.sample(states, min(STATES_PER_CRASH, len(states)))
        for state in sample:
            history.check_store(state.filesystem(), f"{where}, {state}")
        figures.power_states += len(sample)
    else:
        history.check_store(sim.fs.after_process_crash(), f"{where}, after the run")
    if legacy:
        history.violations += misplaced_records(sim.fs, DIRECTORY)
    figures.violations += [f"{where}: {v}" for v in history.violations]
    return scheduler.steps


def campaign(seeds: range, crashes_per_seed: int, *, legacy: bool = False) -> Figures:
    """For each seed: its interleaving whole, then crashed at sampled switch points."""
    figures = Figures()
    for seed in seeds:
        steps = run_once(seed, None, figures, legacy=legacy)
        figures.interleavings += 1
        figures.steps += steps
        points = random.Random(seed).sample(range(1, steps + 1), min(crashes_per_seed, steps))
        for point in points:
            for kind in ("process", "machine"):
                run_once(seed, (kind, point), figures, legacy=legacy)
                figures.interleavings += 1
                if kind == "process":
                    figures.process_crashes += 1
                else:
                    figures.machine_crashes += 1
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.testing.interleave", description=__doc__
    )
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--crashes", type=int, default=10, help="crash points per seed")
    args = parser.parse_args(argv)
    figures = campaign(range(args.seeds), args.crashes)
    print(figures.summary())
    for violation in figures.violations[:20]:
        print(f"VIOLATION {violation}")
    return 1 if figures.violations else 0


if __name__ == "__main__":
    sys.exit(main())
