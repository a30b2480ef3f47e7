"""Engine.compact: what it reclaims, what it reports, and what stats() says afterwards."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from compaction_helpers import DIRECTORY, Clock, assert_clean, contents, open_store, sealed

from engine import ClosedError, CorruptionError, Engine
from engine.segment import COMPACTED_SUFFIX, SEGMENT_SUFFIX
from engine.testing import MemoryFileSystem


def overwritten_store(fs: MemoryFileSystem, clock: Clock, rounds: int = 5) -> Engine:
    db = open_store(fs, clock)
    for r in range(rounds):
        for i in range(20):
            db.put(b"key%02d" % i, b"value %d of %d" % (r, i))
    return db


def test_compact_drops_every_dead_record_and_keeps_the_data() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock)
    db.delete(b"key00")
    db.put(b"short", b"lived", ttl=5)
    clock.advance(10)
    expected = contents(db)
    report = db.compact()
    assert contents(db) == expected
    assert report.records_out == len(expected) == 19
    # key00's five versions died by its delete, the others' older four by overwrites.
    assert report.dropped_overwritten == 4 * 19
    assert report.dropped_deleted == 5 and report.dropped_tombstones == 1
    assert report.dropped_expired == 1
    assert report.bytes_after < report.bytes_before
    stats = db.stats()
    assert stats["dead_bytes"] == 0
    assert all(s["dead_bytes"] == 0 for s in stats["segments"].values())
    # Only the fresh active segment is a log segment; the rest is compacted.
    assert [n for n in stats["segments"] if n.endswith(SEGMENT_SUFFIX)] == [stats["active_segment"]]
    assert all(n.endswith(COMPACTED_SUFFIX) for n in sealed(db))
    db.close()
    assert_clean(fs)
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == expected
        assert reopened.stats()["dead_bytes"] == 0


def test_compact_includes_what_the_active_segment_held() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock, segment_size=1 << 20)
    for r in range(3):
        db.put(b"k", b"v%d" % r)
    assert sealed(db) == []
    report = db.compact()
    assert report.dropped_overwritten == 2 and report.records_out == 1
    assert db.get(b"k") == b"v2"
    db.close()


def test_nothing_dead_means_nothing_touched() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    for i in range(40):
        db.put(b"key%02d" % i, b"x" * 10)
    db.compact()
    journal = len(fs.journal)
    report = db.compact()
    assert report.segments_in == [] and report.records_in == 0
    assert len(fs.journal) == journal
    db.close()


def test_compaction_keeps_sequence_numbers_and_expiry() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    db.put(b"a", b"1", ttl=100)
    db.put(b"b", b"2")
    sequence = db.stats()["sequence"]
    db.compact()
    assert db.get_entry(b"a") == (b"1", clock.now + 100)
    db.close()
    with open_store(fs, clock) as reopened:
        assert reopened.stats()["sequence"] == sequence
        assert reopened.get_entry(b"a") == (b"1", clock.now + 100)
        clock.advance(101)
        assert reopened.get(b"a") is None
        reopened.put(b"c", b"3")
        assert reopened.stats()["sequence"] == sequence + 1


def test_batches_survive_compaction_as_plain_records() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    db.put(b"gone", b"x")
    with db.batch() as batch:
        batch.put(b"a", b"1")
        batch.put(b"b", b"2", ttl=50)
        batch.delete(b"gone")
    report = db.compact()
    assert report.dropped_batch_markers == 1
    expected = {b"a": b"1", b"b": b"2"}
    assert contents(db) == expected
    db.close()
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == expected
        assert reopened.stats()["recovery"]["incomplete_batches"] == 0


def test_stats_report_live_and_dead_bytes_per_segment_and_the_last_compaction() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock, rounds=2)
    stats = db.stats()
    assert stats["last_compaction"] is None
    assert stats["compaction"] == {"auto": False, "running": False, "count": 0}
    for segment in stats["segments"].values():
        assert segment["live_bytes"] + segment["dead_bytes"] + 16 == segment["bytes"]
    assert sum(s["dead_bytes"] for s in stats["segments"].values()) == stats["dead_bytes"] > 0
    report = db.compact()
    stats = db.stats()
    assert stats["compaction"]["count"] == 1
    assert stats["last_compaction"] == report.as_dict()
    assert stats["last_compaction"]["finished_at"] == clock.now
    db.close()


def test_compaction_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock, rounds=2)
    with caplog.at_level(logging.INFO, logger="seglog.compaction"):
        db.compact()
    messages = [r.getMessage() for r in caplog.records if r.name == "seglog.compaction"]
    assert any("compacting" in m for m in messages)
    assert any("compacted into" in m for m in messages)
    db.close()


def test_compact_on_a_closed_store_raises() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    db.close()
    with pytest.raises(ClosedError):
        db.compact()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"auto_compact": "yes"}, TypeError),
        ({"compact_ratio": 0.0}, ValueError),
        ({"compact_ratio": 1.5}, ValueError),
        ({"compact_ratio": "half"}, TypeError),
        ({"compact_min_bytes": -1}, ValueError),
        ({"compact_min_bytes": 1.5}, TypeError),
        ({"compact_interval": 0}, ValueError),
    ],
)
def test_bad_compaction_options_are_refused_before_touching_disk(
    options: dict[str, Any], error: type[Exception]
) -> None:
    fs, clock = MemoryFileSystem(), Clock()
    with pytest.raises(error):
        open_store(fs, clock, **options)
    assert fs.journal == []


def test_compaction_outputs_are_never_taken_for_the_active_segment() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock)
    db.compact()
    db.close()
    with open_store(fs, clock) as reopened:
        active = reopened.stats()["active_segment"]
        assert active.endswith(SEGMENT_SUFFIX)
        reopened.put(b"new", b"value")
        assert reopened.get(b"new") == b"value"
    with open_store(fs, clock) as again:
        assert again.get(b"new") == b"value"


def test_compacted_files_without_a_manifest_are_refused_not_deleted() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock)
    db.compact()
    db.close()
    fs.unlink(f"{DIRECTORY}/MANIFEST")
    with pytest.raises(CorruptionError, match="MANIFEST"):
        open_store(fs, clock)
    assert [n for n in fs.listdir(DIRECTORY) if n.endswith(COMPACTED_SUFFIX)]


def test_the_first_compaction_writes_a_manifest_before_any_output() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = overwritten_store(fs, clock)
    start = len(fs.journal)
    db.compact()
    ops = fs.journal[start:]
    renames = [i for i, op in enumerate(ops) if op[0] == "rename"]
    creates = [i for i, op in enumerate(ops) if op[0] == "create" and op[1].endswith(".cseg")]
    assert renames[0] < creates[0]
    db.close()
