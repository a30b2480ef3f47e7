"""A crash at every file operation of a compaction, and of the recovery after it.

Each workload makes everything durable, then compacts with a crash injected at
the N-th operation the compaction journals, for every N. What a process crash
(everything written survives) and a power cut (only what was fsynced survives)
leave must reopen to exactly the model, with no leftover file, and so must a
second recovery after a crash in the middle of the first.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from compaction_helpers import Clock, assert_clean, compact_segments, contents, open_store, sealed

from engine import Engine
from engine.testing import MemoryFileSystem, Op

SEGMENT_SIZE = 256


class Crash(BaseException):
    """The simulated death of the process at a file operation."""


def history(db: Engine, clock: Clock) -> dict[bytes, bytes]:
    model: dict[bytes, bytes] = {}
    for r in range(3):
        for i in range(8):
            model[b"key%d" % i] = b"round %d value %d" % (r, i)
            db.put(b"key%d" % i, model[b"key%d" % i])
        db.delete(b"key%d" % r)
        del model[b"key%d" % r]
    db.put(b"key7", b"expiring", ttl=5)
    del model[b"key7"]
    with db.batch() as batch:
        batch.put(b"batched", b"yes")
        batch.delete(b"key3")
    model[b"batched"] = b"yes"
    del model[b"key3"]
    clock.advance(10)
    return model


def full(db: Engine) -> None:
    db.compact()


def newest_logs(db: Engine) -> None:
    """A partial compaction whose tombstones must stay: older segments hold their keys."""
    compact_segments(db, [n for n in sealed(db) if n.endswith(".seg")][-2:])


def twice(db: Engine) -> None:
    """A partial compaction of the oldest segments, then one of everything, its output included."""
    compact_segments(db, [n for n in sealed(db) if n.endswith(".seg")][:2])
    db.compact()


SCENARIOS: dict[str, Callable[[Engine], None]] = {
    "full": full,
    "partial": newest_logs,
    "twice": twice,
}


def prepare(clock: Clock) -> tuple[MemoryFileSystem, Engine, dict[bytes, bytes]]:
    fs = MemoryFileSystem()
    db = open_store(fs, clock, segment_size=SEGMENT_SIZE)
    model = history(db, clock)
    db.sync()
    return fs, db, model


def crash_at(fs: MemoryFileSystem, crash_point: int) -> None:
    """Make the ``crash_point``-th operation from now, and every one after it, raise Crash."""
    seen = 0

    def hook(op: Op) -> None:
        nonlocal seen
        seen += 1
        if seen > crash_point:
            raise Crash(op)

    fs.hook = hook


def operations(run: Callable[[], object], fs: MemoryFileSystem) -> int:
    before = len(fs.journal)
    run()
    return len(fs.journal) - before


def reopen(fs: MemoryFileSystem, clock: Clock) -> dict[bytes, bytes]:
    with open_store(fs, clock, segment_size=SEGMENT_SIZE) as db:
        found = contents(db)
    assert_clean(fs)
    return found


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_a_crash_at_every_step_of_a_compaction_recovers_the_model(scenario: str) -> None:
    compact = SCENARIOS[scenario]
    clock = Clock()
    fs, db, model = prepare(clock)
    steps = operations(lambda: compact(db), fs)
    assert steps > 10
    db.close()
    states = 0
    for crash_point in range(steps + 1):
        fs, db, model = prepare(clock)
        crash_at(fs, crash_point)
        if crash_point < steps:
            with pytest.raises(Crash):
                compact(db)
        else:
            compact(db)
        fs.hook = None
        for survivor in (fs.after_process_crash(), fs.after_power_loss()):
            assert reopen(survivor.after_process_crash(), clock) == model, crash_point
            check_crashes_during_recovery(survivor, clock, model)
            states += 1
    assert states == 2 * (steps + 1)


def check_crashes_during_recovery(
    fs: MemoryFileSystem, clock: Clock, model: dict[bytes, bytes]
) -> None:
    """Crash the first recovery at each of its operations; the next one must still be right."""
    probe = fs.after_process_crash()
    steps = operations(lambda: open_store(probe, clock, segment_size=SEGMENT_SIZE), probe)
    for crash_point in range(steps):
        for kind in ("process", "power"):
            attempt = fs.after_process_crash()
            crash_at(attempt, crash_point)
            with pytest.raises(Crash):
                open_store(attempt, clock, segment_size=SEGMENT_SIZE)
            attempt.hook = None
            survivor = (
                attempt.after_process_crash() if kind == "process" else attempt.after_power_loss()
            )
            assert reopen(survivor, clock) == model, (crash_point, kind)
