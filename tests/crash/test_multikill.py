"""The real-kill tier for several processes (``engine.testing.multikill``), CI-sized.

Four writer processes (``shared=True``) and four readers (``readonly=True``)
run for a few seconds while random ones are SIGKILLed and started again; the
store must then hold every acknowledged batch, and no reader may have shown a
state that is not a prefix of the merged history. ``make crashtest`` runs it
longer and prints its line.
"""

from __future__ import annotations

from pathlib import Path

from engine.testing.multikill import check_store, multikill


def test_four_writers_and_four_readers_killed_at_random_lose_nothing(tmp_path: Path) -> None:
    outcome = multikill(str(tmp_path / "store"), seconds=8, writers=4, readers=4, seed=7)
    assert outcome.violations == []
    assert outcome.writer_kills > 0 and outcome.acknowledged > 0 and outcome.reads > 0


def test_the_checker_catches_a_lost_acknowledged_write(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    multikill(store, seconds=1, writers=1, readers=0)
    problems = check_store(store, [10**9])
    assert problems and "acknowledged" in problems[0]
