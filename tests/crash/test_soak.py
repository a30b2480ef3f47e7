"""The soak (``engine.testing.soak``): its checker, and a one-minute soak of 16 threads
with SIGKILLs (``make soak`` runs ten minutes; ``SOAK_SECONDS`` changes either)."""

from __future__ import annotations

import os
from pathlib import Path

from engine.testing.soak import Model, soak

NOW = 1_000_000.0


def test_the_checker_catches_lost_half_and_stale_writes() -> None:
    model = Model()
    model.announced(0, [["a", "01", None]])
    model.acknowledge(0)
    assert model.check({"a": ("01", None)}, NOW, NOW) == []
    assert model.check({}, NOW, NOW) != []  # an acknowledged write lost

    model.announced(1, [["b", "02", None], ["c", None, None]])  # a batch, not acknowledged
    problems = model.check({"a": ("01", None), "b": ("02", None), "c": ("09", None)}, NOW, NOW)
    assert problems, "half a batch went unnoticed"

    model = Model()
    model.announced(2, [["d", "03", None]])
    assert model.check({"d": ("03", None)}, NOW, NOW) == []  # landed before the kill: adopted
    assert model.check({}, NOW, NOW) != []  # and from then on it must stay

    model = Model()
    model.announced(3, [["e", "04", NOW - 11]])
    model.acknowledge(3, NOW - 10)  # acknowledged with the engine's exact expiry
    assert model.check({"e": ("04", None)}, NOW, NOW) != []  # expired, yet still there
    assert model.check({}, NOW, NOW) == []


def test_a_minute_of_load_and_kills_loses_nothing(tmp_path: Path) -> None:
    seconds = float(os.environ.get("SOAK_SECONDS", "60"))
    report = soak(seconds, str(tmp_path / "store"), seed=7)
    print(report.summary())
    assert report.violations == [], report.violations[:5]
    assert report.kills >= 3 and report.writes_acknowledged > 0 and report.keys_checked > 0
    for sample in report.samples:  # descriptors follow the segments: no leak
        assert sample.fds <= 2 * sample.segments + 32, sample
