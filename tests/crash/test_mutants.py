"""Mutants: the engine with each fsync, directory fsync and ordering step removed, and a
weakened CRC; the crash checks must catch every one (a harness that catches nothing
proves nothing). Call sites are discovered by running workloads, so a new fsync
(compaction's, say) gets its mutant without anyone listing it.
"""

from __future__ import annotations

import pytest

from engine.testing.campaign import CI, Baseline, discover_mutants, hunt
from engine.testing.mutants import CRC_MUTANT, EQUIVALENT, ORDERING, Mutant, counted

CORE_SITES = {
    ("fsync", "engine.writer.SegmentWriter._fsync_active"),
    ("fsync", "engine.writer.SegmentWriter.roll_over"),
    ("fsync", "engine.segment.create_segment"),
    ("fsync_dir", "engine.segment.create_segment"),
}


@pytest.fixture(scope="module")
def mutants() -> list[Mutant]:
    return discover_mutants(CI)


def test_discovery_finds_the_core_durability_steps(mutants: list[Mutant]) -> None:
    dropped = {(m.op, m.site) for m in mutants if m.action == "drop"}
    assert dropped >= CORE_SITES
    assert {(m.op, m.site) for m in mutants if m.action == "defer"} == set(ORDERING)
    assert CRC_MUTANT in mutants
    names = {m.name for m in mutants}
    assert set(EQUIVALENT) <= names, "an equivalent mutant no longer exists: drop its entry"


def test_every_mutant_is_caught(mutants: list[Mutant]) -> None:
    must_catch, _equivalent = counted(mutants)
    baseline = Baseline(CI)
    survivors = []
    for mutant in must_catch:
        result = hunt(mutant, CI, baseline=baseline)
        if result.caught_by is None:
            survivors.append(f"{mutant} ({mutant.rule}) survived {result.workloads} workloads")
        else:
            print(f"\ncaught {mutant} after {result.workloads} workloads: {result.caught_by}")
    assert not survivors, "\n".join(survivors)
    print(f"\nmutants caught: {len(must_catch)}/{len(must_catch)}")
