"""The crash-consistency campaign behind ``make crashtest``: the exhaustive tier and mutants.

``python -m engine.testing.campaign`` runs every workload of the setting,
crashed at every file operation under every crash kind, then every mutant,
and prints the figures, ending with::

    crash states: N (M distinct disk images), workloads: W, violations: 0, mutants caught: K/K

Settings come from the environment so that CI and long runs share one code
path: ``SEGLOG_CRASH_PROFILE=deep`` runs longer workloads from the same
starting stores, samples twice as many combined crash states (and re-hunts
the documented equivalent mutants);
``SEGLOG_CRASH_DEPTH`` overrides the longest workload on an empty store.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from engine.options import SyncMode
from engine.testing.actions import Action, quiet_logs, vocabulary, workloads
from engine.testing.checker import Checker, Figures
from engine.testing.faults import depth_from_env, run_faults
from engine.testing.mutants import EQUIVALENT, Mutant, SiteRecorder, applied, counted, mutants_for
from engine.testing.simulator import CRASH_KINDS, Limits

MODES: Final[tuple[SyncMode, ...]] = ("always", "none")
#: A store holding both keys across two segments when the workload starts.
SEEDED: Final = (Action("put", b"a"), Action("put", b"b"), Action("put", b"a"))
#: A store that has been compacted once.
COMPACTED: Final = (Action("put", b"a"), Action("put", b"a"), Action("compact"))
#: SEEDED as an older seglog left it: format version 1 (``engine.testing.legacy``).
LEGACY: Final = (*SEEDED, Action("downgrade"))

Start = tuple[tuple[Action, ...], int]


@dataclass(frozen=True)
class Setting:
    """How far the exhaustive tier goes: starting stores, the longest workload on each."""

    name: str
    modes: tuple[SyncMode, ...] = MODES
    #: Longest workload on an empty store, on SEEDED (and LEGACY) and on COMPACTED.
    depths: tuple[int, int, int] = (3, 2, 2)
    batch: bool = False
    limits: Limits = field(default_factory=Limits)

    def starts(self) -> list[Start]:
        return [
            ((), self.depths[0]),
            (SEEDED, self.depths[1]),
            (COMPACTED, self.depths[2]),
            (LEGACY, self.depths[1]),
        ]

    def plan(self) -> Iterator[tuple[SyncMode, tuple[Action, ...], tuple[Action, ...]]]:
        """(mode, prologue, workload) triples, shortest workloads first."""
        actions = vocabulary(batch=self.batch)
        for mode in self.modes:
            for prologue, depth in self.starts():
                for workload in workloads(actions, depth):
                    yield mode, prologue, workload

    def chunks(self) -> list[tuple[SyncMode, Start]]:
        """Independent parts of the plan, for worker processes."""
        return [(mode, start) for mode in self.modes for start in self.starts()]

    def describe(self) -> str:
        names = {
            (): "an empty store",
            SEEDED: "a two-segment store",
            COMPACTED: "a compacted store",
            LEGACY: "a two-segment store of format version 1",
        }
        starts = ", ".join(f"up to {depth} on {names[p]}" for p, depth in self.starts())
        actions = ", ".join(str(a) for a in vocabulary(batch=self.batch))
        return (
            f"setting {self.name}: sync modes {', '.join(self.modes)}; workloads of {starts}; "
            f"actions: {actions}"
        )


CI: Final = Setting("ci", batch=True)
DEEP: Final = Setting("deep", depths=(4, 3, 3), batch=True, limits=Limits(combinations=96))


def setting_from_env() -> Setting:
    """``SEGLOG_CRASH_PROFILE`` (ci or deep) and ``SEGLOG_CRASH_DEPTH`` pick the setting."""
    setting = DEEP if os.environ.get("SEGLOG_CRASH_PROFILE") == "deep" else CI
    depth = os.environ.get("SEGLOG_CRASH_DEPTH")
    if depth:
        setting = Setting(
            f"{setting.name} (depth {depth})",
            setting.modes,
            (int(depth), setting.depths[1], setting.depths[2]),
            setting.batch,
            setting.limits,
        )
    return setting


# ------------------------------------------------------------ the exhaustive tier


def _run_chunk(args: tuple[Setting, SyncMode, Start]) -> Figures:
    setting, mode, (prologue, depth) = args
    checker = Checker(sync=mode, limits=setting.limits)
    with quiet_logs():
        for workload in workloads(vocabulary(batch=setting.batch), depth):
            checker.run_workload(workload, prologue=prologue)
    return checker.figures


Chunk = TypeVar("Chunk")


def in_chunks(
    setting: Setting,
    run: Callable[[tuple[Setting, SyncMode, Start]], Chunk],
    processes: int = 1,
) -> list[Chunk]:
    """``run`` on each independent part of ``setting``'s plan, in ``processes`` processes."""
    jobs = [(setting, mode, start) for mode, start in setting.chunks()]
    if processes > 1 and len(jobs) > 1:
        with multiprocessing.get_context("fork").Pool(processes) as pool:
            return pool.map(run, jobs, chunksize=1)
    return [run(job) for job in jobs]


def exhaustive(setting: Setting, *, processes: int = 1) -> Figures:
    """Run every workload of ``setting``, crashed at every file operation, every crash kind."""
    started = time.perf_counter()
    parts = in_chunks(setting, _run_chunk, processes)
    figures = Figures()
    for part in parts:
        figures.merge(part)
    figures.seconds = time.perf_counter() - started
    return figures


# ------------------------------------------------------------------- mutants


def discover_mutants(setting: Setting = CI) -> list[Mutant]:
    """Run short workloads recording every fsync, directory fsync and truncate site."""
    recorder = SiteRecorder()
    kinds = ("process", "power/prefix", "power/torn-garbage")
    with quiet_logs():
        for mode in setting.modes:
            checker = Checker(sync=mode, kinds=kinds, wrap=recorder)
            for prologue, _depth in setting.starts():
                for workload in workloads(vocabulary(batch=setting.batch), 2):
                    checker.run_workload(workload, prologue=prologue)
    return mutants_for(recorder.sites)


class Baseline:
    """Whether the unmutated engine keeps every promise on a workload (cached).

    A mutant counts as caught only by a workload the real engine passes.
    """

    def __init__(self, setting: Setting = CI, kinds: Sequence[str] = CRASH_KINDS) -> None:
        self.checkers = {
            mode: Checker(sync=mode, kinds=kinds, limits=setting.limits) for mode in setting.modes
        }
        self._passes: dict[tuple[object, ...], bool] = {}

    def passes(
        self, mode: SyncMode, prologue: tuple[Action, ...], workload: tuple[Action, ...]
    ) -> bool:
        key = (mode, prologue, workload)
        if key not in self._passes:
            with quiet_logs():
                checker = self.checkers[mode]
                found = checker.run_workload(workload, prologue=prologue, stop_early=True)
            self._passes[key] = not found
        return self._passes[key]


@dataclass
class Hunt:
    """How one mutant fared: the first violation found, or None if it survived."""

    mutant: Mutant
    caught_by: str | None
    workloads: int
    seconds: float


def hunt(
    mutant: Mutant,
    setting: Setting = CI,
    *,
    baseline: Baseline | None = None,
    kinds: Sequence[str] = CRASH_KINDS,
) -> Hunt:
    """Run ``setting``'s workloads against ``mutant`` until one breaks a promise.

    A violation counts only on a workload the unmutated engine passes.
    """
    started = time.perf_counter()
    baseline = baseline or Baseline(setting, kinds)
    count = 0
    with quiet_logs(), applied(mutant) as wrap:
        checkers = {
            mode: Checker(sync=mode, kinds=kinds, limits=setting.limits, wrap=wrap)
            for mode in setting.modes
        }
        for mode, prologue, workload in setting.plan():
            count += 1
            found = checkers[mode].run_workload(workload, prologue=prologue, stop_early=True)
            if found and baseline.passes(mode, prologue, workload):
                elapsed = time.perf_counter() - started
                return Hunt(mutant, f"sync={mode}: {found[0]}", count, elapsed)
    return Hunt(mutant, None, count, time.perf_counter() - started)


# ---------------------------------------------------------------------- main


def main(argv: Sequence[str] = ()) -> int:
    """Run the campaign and print its figures; exit status 1 on any violation or survivor."""
    setting = setting_from_env()
    processes = max(2, os.cpu_count() or 1)
    print(setting.describe(), flush=True)
    figures = exhaustive(setting, processes=processes)
    rate = figures.crash_states / figures.seconds if figures.seconds else 0.0
    print(
        f"exhaustive tier: {figures.crash_states} crash states "
        f"({figures.distinct_images} distinct disk images) from {figures.workloads} workloads, "
        f"{figures.recoveries} recoveries, in {figures.seconds:.1f}s on {processes} processes "
        f"({rate:,.0f} crash states/s)",
        flush=True,
    )
    for kind, count in sorted(figures.kinds.items()):
        print(f"  {kind:20} {count:9d}")
    for violation in figures.violations[:20]:
        print(f"VIOLATION {violation}")
    mutants, equivalent = counted(discover_mutants(setting))
    baseline = Baseline(setting)
    caught = 0
    for mutant in mutants:
        result = hunt(mutant, setting, baseline=baseline)
        if result.caught_by is not None:
            caught += 1
            first = result.caught_by.splitlines()
            print(f"mutant caught   ({result.workloads:4d} workloads) {mutant}: {first[0]}")
            print(f"                {first[1].strip()[:160]}")
        else:
            print(f"MUTANT SURVIVED ({result.workloads:4d} workloads) {mutant}: {mutant.rule}")
    survivors_caught = 0
    for mutant in equivalent:
        if "deep" in setting.name:
            result = hunt(mutant, setting, baseline=baseline)
            if result.caught_by is not None:
                survivors_caught += 1
                print(f"EQUIVALENT MUTANT CAUGHT {mutant}: {result.caught_by.splitlines()[0]}")
                continue
        print(f"equivalent mutant (not counted) {mutant}: {EQUIVALENT[mutant.name]}")
    faults = run_faults(setting.modes, depth_from_env())
    for problem in faults.violations[:20]:
        print(f"FAULT VIOLATION {problem}")
    violations = len(figures.violations) + len(faults.violations)
    print(
        f"crash states: {figures.crash_states} ({figures.distinct_images} distinct disk images), "
        f"workloads: {figures.workloads}, mutants caught: {caught}/{len(mutants)}, "
        f"{faults.summary()}; violations in all: {violations}",
        flush=True,
    )
    return 0 if violations == 0 and caught == len(mutants) and not survivors_caught else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
