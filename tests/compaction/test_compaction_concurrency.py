"""Compaction while the store is in use: racing writes win, reads and scans never fail."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from compaction_helpers import Clock, assert_clean, contents, open_store

from engine import Engine
from engine.compaction import CancelledError
from engine.segment import COMPACTED_BASE
from engine.testing import MemoryFileSystem, Op


def fill(db: Engine, rounds: int = 3, keys: int = 20) -> dict[bytes, bytes]:
    model = {}
    for r in range(rounds):
        for i in range(keys):
            model[b"key%02d" % i] = b"value %d of %d" % (r, i)
            db.put(b"key%02d" % i, model[b"key%02d" % i])
    return model


def race_at(fs: MemoryFileSystem, suffix: str, race: Callable[[], object]) -> None:
    """Run ``race`` once, when the compaction creates its first file ending in ``suffix``."""

    def hook(op: Op) -> None:
        if op[0] == "create" and op[1].endswith(suffix):
            fs.hook = None
            race()

    fs.hook = hook


def test_writes_racing_the_install_win() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    model = fill(db)

    def race() -> None:
        db.put(b"key01", b"racing write")
        db.delete(b"key02")

    race_at(fs, ".hint", race)
    report = db.compact()
    model[b"key01"] = b"racing write"
    del model[b"key02"]
    assert report.lost_races == 2
    assert contents(db) == model
    db.close()
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == model


def test_a_write_that_killed_an_input_record_is_durable_before_the_inputs_go() -> None:
    """The racing put makes key19's old record dead as the scan reaches it.

    Unless the compaction fsyncs the active segment before it commits, a power
    cut then loses both the old value (its segment deleted) and the new one.
    """
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    model = fill(db)
    race_at(fs, ".cseg", lambda: db.put(b"key19", b"racing write"))
    report = db.compact()
    assert report.lost_races == 0 and report.records_out == 19
    survivor = fs.after_power_loss()
    with open_store(survivor, clock) as reopened:
        assert reopened.get(b"key19") == b"racing write"
        del model[b"key19"]
        assert {k: v for k, v in contents(reopened).items() if k != b"key19"} == model
    db.close()


def test_reads_writes_and_scans_go_on_during_compactions(tmp_path: Path) -> None:
    """Real files and mappings: segments are deleted while readers may still hold them."""
    db = Engine.open(tmp_path / "store", sync="none", segment_size=4096, auto_compact=False)
    keys = [b"key%03d" % i for i in range(200)]
    written: dict[bytes, set[bytes]] = {key: set() for key in keys}
    model: dict[bytes, bytes] = {}
    stop = threading.Event()
    errors: list[BaseException] = []

    def guarded(work: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                while not stop.is_set():
                    work()
            except BaseException as exc:
                errors.append(exc)

        return run

    counter = iter(range(1 << 30))
    rng = random.Random(7)

    def write() -> None:
        key = rng.choice(keys[:100])
        value = b"%s = %d" % (key, next(counter))
        written[key].add(value)
        db.put(key, value)
        model[key] = value

    def write_other() -> None:
        key = rng.choice(keys[100:])
        if rng.random() < 0.2:
            db.delete(key)
            model.pop(key, None)
            return
        value = b"%s = %d" % (key, next(counter))
        written[key].add(value)
        db.put(key, value)
        model[key] = value

    def read() -> None:
        key = rng.choice(keys)
        value = db.get(key)
        assert value is None or value in written[key], (key, value)
        entry = db.get_entry(key)
        assert entry is None or entry[0] in written[key]

    def scan() -> None:
        for key, value in db.scan():
            assert value in written[key]

    def compact() -> None:
        db.compact()

    threads = [
        threading.Thread(target=guarded(work))
        for work in (write, write_other, read, read, scan, compact)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    stop.set()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert db.stats()["compaction"]["count"] > 0
    assert contents(db) == model
    db.close()
    with Engine.open(tmp_path / "store", sync="none", auto_compact=False) as reopened:
        assert contents(reopened) == model


def test_a_scan_in_flight_keeps_reading_segments_that_compaction_deleted(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "store", segment_size=4096, auto_compact=False) as db:
        model = fill(db, rounds=5, keys=100)
        scan = db.scan()
        first = [next(scan) for _ in range(10)]
        db.compact()
        for i in range(100):
            db.put(b"key%02d" % i, b"changed after the scan began")
        db.compact()
        assert dict(first + list(scan)) == model


def test_automatic_compaction_runs_in_the_background(tmp_path: Path) -> None:
    with Engine.open(
        tmp_path / "store",
        sync="none",
        segment_size=4096,
        compact_interval=0.01,
        compact_min_bytes=0,
    ) as db:
        deadline = time.monotonic() + 20
        model: dict[bytes, bytes] = {}
        while db.stats()["compaction"]["count"] == 0:
            assert time.monotonic() < deadline, "automatic compaction never ran"
            model.update(fill(db, rounds=2, keys=50))
        stats = db.stats()
        assert stats["last_compaction"]["trigger"] == "auto"
        assert contents(db) == model
    with Engine.open(tmp_path / "store", auto_compact=False) as reopened:
        assert contents(reopened) == model


def test_automatic_compaction_waits_for_enough_dead_data() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock, auto_compact=True, compact_interval=0.01)
    fill(db, rounds=4)
    time.sleep(0.1)
    assert db.stats()["compaction"]["count"] == 0
    db.close()


def test_automatic_selection_skips_segments_of_kept_tombstones() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock, segment_size=256, compact_min_bytes=0)
    db.put(b"old", b"value")
    for i in range(3):
        db.put(b"keep%d" % i, b"k" * 55)
    # The first segment is now full, and stays mostly live: automatic compaction leaves it.
    db.delete(b"old")
    for i in range(8):
        db.put(b"fill%d" % i, b"x" * 20)
    for i in range(8):
        db.put(b"fill%d" % i, b"y" * 20)
    compactor = db.internals.compactor
    report = compactor.compact(compactor.select, "auto")
    assert report is not None and "0000000001.seg" not in report.segments_in
    assert report.tombstones_kept == 1
    assert db.get(b"old") is None
    # The output's only dead bytes are the tombstone it had to keep: not worth a rewrite.
    writer = db.internals.writer
    with writer.lock:
        sizes = writer.sealed_sizes
        assert compactor.select({i: s for i, s in sizes.items() if i >= COMPACTED_BASE}) == []
    db.close()
    with open_store(fs, clock, segment_size=256) as reopened:
        assert reopened.get(b"old") is None


def test_closing_abandons_a_compaction_that_has_not_committed() -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    model = fill(db, rounds=6)
    entered, resume = threading.Event(), threading.Event()

    def pause() -> None:
        entered.set()
        resume.wait()

    race_at(fs, ".cseg", pause)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            db.compact()
        except BaseException as exc:
            outcome.append(exc)

    compaction = threading.Thread(target=run)
    compaction.start()
    assert entered.wait(10)
    closing = threading.Thread(target=db.close)
    closing.start()
    while not db.internals.compactor.stopping:
        time.sleep(0.001)
    resume.set()
    compaction.join()
    closing.join()
    assert len(outcome) == 1 and isinstance(outcome[0], CancelledError)
    assert_clean(fs)
    assert not [n for n in fs.listdir("/store") if n.endswith((".cseg", ".hint"))]
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == model


@pytest.mark.parametrize("kind", ["fsync", "write"])
def test_an_io_error_before_the_commit_leaves_the_store_working(kind: str) -> None:
    fs, clock = MemoryFileSystem(), Clock()
    db = open_store(fs, clock)
    model = fill(db)

    def fail(op: Op) -> None:
        if op[0] == kind and op[1].endswith(".cseg"):
            raise OSError(28, "No space left on device")

    fs.hook = fail
    with pytest.raises(Exception, match="compaction failed"):
        db.compact()
    fs.hook = None
    assert not [n for n in fs.listdir("/store") if n.endswith((".cseg", ".hint"))]
    db.put(b"after", b"the failure")
    model[b"after"] = b"the failure"
    assert contents(db) == model
    db.compact()
    db.close()
    with open_store(fs, clock) as reopened:
        assert contents(reopened) == model
