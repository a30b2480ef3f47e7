"""Nothing deleted or expired ever comes back, whatever is compacted, in whatever order."""

from __future__ import annotations

import itertools

from compaction_helpers import (
    DIRECTORY,
    Clock,
    assert_clean,
    compact_segments,
    contents,
    open_store,
    sealed,
)

from engine import Engine
from engine.testing import MemoryFileSystem

TTL = 50


def test_put_compact_delete_compact_reopen_leaves_nothing() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    db.put(b"k", b"v")
    db.compact()
    db.delete(b"k")
    report = db.compact()
    assert report.tombstones_kept == 0
    db.close()
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == {}
        assert reopened.stats()["dead_bytes"] == 0
    assert_clean(fs)


def history(db: Engine, clock: Clock) -> dict[bytes, bytes]:
    """Writes whose later records shadow earlier ones across segment boundaries."""
    model: dict[bytes, bytes] = {}

    def put(key: bytes, value: bytes, ttl: float | None = None) -> None:
        db.put(key, value, ttl=ttl)
        if ttl is None:
            model[key] = value
        else:
            model.pop(key, None)  # expires before any check below

    def delete(key: bytes) -> None:
        db.delete(key)
        model.pop(key, None)

    for i in range(6):
        put(b"keep%d" % i, b"kept value %d" % i)
    put(b"deleted", b"old value")
    put(b"expired", b"old value without expiry")
    put(b"revived", b"first life")
    put(b"twice", b"first")
    for i in range(6):
        put(b"filler%d" % i, b"filler %d" % i)
    delete(b"deleted")
    put(b"expired", b"short-lived value", ttl=TTL)
    delete(b"revived")
    put(b"twice", b"second")
    for i in range(6):
        put(b"filler%d" % i, b"filler %d again" % i)
    put(b"revived", b"second life")
    with db.batch() as batch:
        batch.delete(b"twice")
        batch.put(b"batched", b"in a batch")
    model.pop(b"twice")
    model[b"batched"] = b"in a batch"
    for i in range(3):
        put(b"filler%d" % i, b"filler %d, third" % i)
    clock.advance(TTL + 1)
    return model


def build(clock: Clock) -> tuple[MemoryFileSystem, Engine, dict[bytes, bytes]]:
    fs = MemoryFileSystem()
    db = open_store(fs, clock, segment_size=176)
    return fs, db, history(db, clock)


def check(fs: MemoryFileSystem, db: Engine, clock: Clock, model: dict[bytes, bytes]) -> None:
    assert contents(db) == model
    db.close()
    assert_clean(fs)
    with open_store(fs, clock, segment_size=176) as reopened:
        assert contents(reopened) == model


def test_any_partial_compaction_keeps_newer_deletes_shadowing_older_values() -> None:
    """Every subset of the sealed segments, compacted alone, then every subset after that."""
    clock = Clock()
    _fs, db, model = build(clock)
    names = sealed(db)
    db.close()
    assert len(names) >= 5
    runs = 0
    for size in range(1, len(names) + 1):
        for first in itertools.combinations(names, size):
            fs, db, _ = build(clock)
            compact_segments(db, first)
            assert contents(db) == model, first
            after_first = sealed(db)
            db.close()
            for second in _some_subsets(after_first):
                copy = fs.after_process_crash()
                db = open_store(copy, clock, segment_size=176)
                assert contents(db) == model, first
                compact_segments(db, second)
                check(copy, db, clock, model)
                runs += 1
    assert runs > 100


def _some_subsets(names: list[str]) -> list[tuple[str, ...]]:
    """Every single segment, every pair of neighbours, and all of them."""
    pairs = list(itertools.pairwise(names))
    return [(n,) for n in names] + pairs + [tuple(names)]


def test_a_full_compaction_after_partial_ones_drops_every_kept_tombstone() -> None:
    clock = Clock()
    fs, db, model = build(clock)
    names = sealed(db)
    kept = 0
    for name in reversed(names):  # newest first: deletes are kept while older values live
        report = compact_segments(db, [name])
        kept += report.tombstones_kept if report else 0
        assert contents(db) == model
    assert kept > 0
    report = db.compact()
    assert report.tombstones_kept == 0
    assert db.stats()["dead_bytes"] == 0
    check(fs, db, clock, model)


def test_an_expired_value_never_revives_an_older_one() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock, segment_size=176)
    db.put(b"k", b"forever")
    for i in range(8):
        db.put(b"filler%d" % i, b"x" * 20)
    db.put(b"k", b"for a while", ttl=10)
    for i in range(8):
        db.put(b"filler%d" % i, b"y" * 20)
    clock.advance(11)
    older, newer = _holding(fs, db, b"forever"), _holding(fs, db, b"for a while")
    assert older != newer
    report = compact_segments(db, [newer])
    assert report is not None and report.tombstones_kept == 1
    assert db.get(b"k") is None
    db.close()
    db = open_store(fs, clock, segment_size=176)
    assert db.get(b"k") is None
    report = compact_segments(db, [older])
    assert report is not None and report.dropped_deleted == 1
    db.compact()
    db.close()
    with open_store(fs, clock, segment_size=176) as reopened:
        assert reopened.get(b"k") is None
        assert reopened.stats()["dead_bytes"] == 0


def _holding(fs: MemoryFileSystem, db: Engine, value: bytes) -> str:
    """The name of the sealed segment whose bytes contain ``value``."""
    (name,) = (n for n in sealed(db) if value in fs.read_file(f"{DIRECTORY}/{n}"))
    return name
