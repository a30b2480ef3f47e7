"""The multi-process tier of the crash simulator (``engine.testing.interleave``), CI-sized.

Two shared writers (one compacts) and a reader on one in-memory file system,
interleaved at every file operation by seeded schedules, each crashed at
sampled operations: one process dying, or the whole machine (every power-cut
state opened alone). ``make crashtest`` runs more seeds and prints its line.
"""

from __future__ import annotations

import pytest

from engine.follower import Follower
from engine.testing.interleave import Figures, campaign, run_once


def test_interleaved_processes_lose_nothing_and_show_only_prefixes() -> None:
    figures = campaign(range(8), crashes_per_seed=8)
    assert figures.violations == []
    assert figures.process_crashes == figures.machine_crashes == 64
    assert figures.power_states > 0


def test_writers_starting_from_a_format_1_store_roll_over_and_lose_nothing() -> None:
    """The store an older seglog created: each writer's first append rolls over to a
    version-2 segment, interleaved and crashed like the rest."""
    figures = campaign(range(4), crashes_per_seed=4, legacy=True)
    assert figures.violations == []
    assert figures.process_crashes == figures.machine_crashes == 16


def test_a_writer_that_does_not_catch_up_before_appending_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The mutant appends where its stale view ends, over the other writer's records."""
    monkeypatch.setattr(Follower, "_check", lambda self: None)
    figures = Figures()
    for seed in range(4):
        run_once(seed, None, figures)
    assert any("acknowledged" in violation for violation in figures.violations)
