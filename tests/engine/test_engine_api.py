"""The engine's public surface: reads, writes, scans, expiry, bad input, ownership, failure."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import FakeClock

from engine import ClosedError, CorruptionError, Engine, FailedError, LockedError, StorageError
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    FILE_HEADER_SIZE,
    NO_EXPIRY,
    RecordType,
    encode_record,
)
from engine.hints import HINT_SUFFIX, HintBuilder, decode_hint
from engine.segment import segment_name
from engine.testing import MemoryFileSystem, Op

#: A batch op for the tests below: (key, value or None to delete, ttl or None).
BatchOp = tuple[bytes, bytes | None, float | None]


def test_put_get_delete(db: Engine) -> None:
    db.put(b"a", b"1")
    db.put(b"b", bytearray(b"2"))
    assert db.get(b"a") == b"1"
    assert db.get(b"b") == b"2"
    assert db.get(b"missing") is None
    db.put(b"a", b"one")
    assert db.get(b"a") == b"one"
    db.delete(b"a")
    db.delete(b"a")  # deleting a missing key is not an error
    assert db.get(b"a") is None
    assert len(db) == 1
    assert b"b" in db and b"a" not in db


def test_values_are_copies(db: Engine) -> None:
    value = bytearray(b"mutable")
    db.put(b"k", value)
    value[:] = b"changed"
    assert db.get(b"k") == b"mutable"


def test_empty_value_and_binary_keys(db: Engine) -> None:
    db.put(b"\x00", b"")
    db.put(b"\xff\x00\xff", b"\x00" * 10)
    assert db.get(b"\x00") == b""
    assert db.get(b"\xff\x00\xff") == b"\x00" * 10


def test_data_survives_reopen_and_rollover(store_dir: Path) -> None:
    with Engine.open(store_dir, segment_size=512) as db:
        for i in range(100):
            db.put(b"k%03d" % i, b"v%d" % i)
        for i in range(0, 100, 3):
            db.delete(b"k%03d" % i)
        assert db.stats()["segment_count"] > 3
    with Engine.open(store_dir, segment_size=512) as db:
        expected = {b"k%03d" % i: b"v%d" % i for i in range(100) if i % 3}
        assert dict(db.scan()) == expected
        assert len(db) == len(expected)


def test_scan_order_bounds_prefix_reverse(db: Engine) -> None:
    keys = [b"a", b"ab", b"abc", b"b", b"ba", b"c", b"\xff", b"\xff\xff"]
    for key in reversed(keys):
        db.put(key, key.upper())
    assert [k for k, _ in db.scan()] == keys
    assert [k for k, _ in db.scan(reverse=True)] == keys[::-1]
    assert [k for k, _ in db.scan(prefix=b"a")] == [b"a", b"ab", b"abc"]
    assert [k for k, _ in db.scan(prefix=b"\xff")] == [b"\xff", b"\xff\xff"]
    assert [k for k, _ in db.scan(start=b"ab", end=b"ba")] == [b"ab", b"abc", b"b"]
    assert [k for k, _ in db.scan(prefix=b"a", start=b"ab", end=b"abc")] == [b"ab"]
    assert list(db.scan(start=b"c", end=b"a")) == []
    assert list(db.scan_keys(prefix=b"b", reverse=True)) == [b"ba", b"b"]
    assert dict(db.scan(prefix=b"ab")) == {b"ab": b"AB", b"abc": b"ABC"}


def test_scan_limit_takes_the_first_live_keys(db: Engine, clock: FakeClock) -> None:
    for i in range(10):
        db.put(b"k%d" % i, b"v%d" % i)
    db.put(b"k1", b"soon", ttl=5)
    db.delete(b"k2")
    clock.advance(10)  # k1 has expired: a limit counts live keys only
    assert [k for k, _ in db.scan(limit=3)] == [b"k0", b"k3", b"k4"]
    assert [k for k, _ in db.scan(start=b"k5", limit=2)] == [b"k5", b"k6"]
    assert [k for k, _ in db.scan(reverse=True, limit=2)] == [b"k9", b"k8"]
    assert list(db.scan_keys(prefix=b"k", start=b"k8", limit=5)) == [b"k8", b"k9"]
    assert list(db.scan(limit=0)) == []
    assert len(list(db.scan(limit=None))) == 8
    with pytest.raises(TypeError):
        list(db.scan(limit=1.5))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        list(db.scan_keys(limit=-1))


def test_scan_is_a_snapshot(db: Engine) -> None:
    for i in range(10):
        db.put(b"k%d" % i, b"old")
    scan = db.scan()
    first = next(scan)
    for i in range(10):
        db.put(b"k%d" % i, b"new")
    db.delete(b"k5")
    db.put(b"k99", b"added")
    rest = list(scan)
    assert [first, *rest] == [(b"k%d" % i, b"old") for i in range(10)]


def test_expiry_with_a_fake_clock(store_dir: Path, clock: FakeClock) -> None:
    with Engine.open(store_dir, clock=clock) as db:
        db.put(b"ttl", b"v", ttl=10)
        db.put(b"abs", b"v", expires_at=clock.now + 20)
        db.put(b"past", b"v", expires_at=clock.now - 1)
        db.put(b"forever", b"v")
        assert db.get_entry(b"ttl") == (b"v", clock.now + 10)
        assert db.get_entry(b"forever") == (b"v", None)
        assert db.get(b"past") is None and b"past" not in db
        assert len(db) == 3
        clock.advance(10)
        assert db.get(b"ttl") is None and b"ttl" not in db
        assert [k for k, _ in db.scan()] == [b"abs", b"forever"]
        assert len(db) == 2
    with Engine.open(store_dir, clock=clock) as db:
        assert [k for k, _ in db.scan()] == [b"abs", b"forever"]
        clock.advance(10)
    with Engine.open(store_dir, clock=clock) as db:
        assert [k for k, _ in db.scan()] == [b"forever"]
        assert len(db) == 1 and db.get(b"abs") is None


def test_rewrite_clears_expiry(db: Engine, clock: FakeClock) -> None:
    db.put(b"k", b"v1", ttl=5)
    db.put(b"k", b"v2")
    clock.advance(100)
    assert db.get(b"k") == b"v2"
    db.put(b"k", b"v3", ttl=-1)
    assert db.get(b"k") is None


def _seed(db: Engine, clock: FakeClock, settled: bool) -> None:
    """Keys a batch can overwrite, delete or revive: one expiring, one removed after a scan.

    ``settled``: an ordered read follows, so the index has no removal left to merge.
    """
    for i in range(6):
        db.put(b"k%d" % i, b"old%d" % i)
    db.put(b"k6", b"expiring", ttl=50)
    db.put(b"gone", b"x")
    assert b"gone" in dict(db.scan())  # the sorted list now holds it, so its delete is stale
    db.delete(b"gone")
    if settled:
        assert b"gone" not in dict(db.scan())
    clock.advance(1)


def _apply(db: Engine, ops: list[BatchOp], *, batched: bool) -> None:
    if batched:
        with db.batch() as batch:
            for key, value, ttl in ops:
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value, ttl=ttl)
        return
    for key, value, ttl in ops:
        if value is None:
            db.delete(key)
        else:
            db.put(key, value, ttl=ttl)


def _visible(db: Engine) -> tuple[object, ...]:
    keys = [b"k%d" % i for i in range(10)] + [b"gone", b"new", b"missing"]
    stats = db.stats()
    entries = {key: db.get_entry(key) for key in keys}
    return dict(db.scan()), list(db.scan(reverse=True)), entries, len(db), stats["expiring_keys"]


BATCHES: dict[str, list[BatchOp]] = {
    "new and overwritten keys": [
        (b"k1", b"a", None),
        (b"new", b"b", None),
        (b"k6", b"c", None),
        (b"gone", b"d", None),
        (b"k7", b"e", None),
    ],
    "a repeated key": [(b"k1", b"a", None), (b"new", b"b", None), (b"k1", b"c", None)],
    "deletes and expiring puts": [
        (b"k1", None, None),
        (b"k2", b"a", 10.0),
        (b"k3", b"b", -1.0),
        (b"new", b"c", None),
        (b"k2", b"d", None),
        (b"new", None, None),
        (b"k4", b"e", 20.0),
        (b"k5", b"f", None),
    ],
}


@pytest.mark.parametrize("settled", [False, True], ids=["stale", "settled"])
@pytest.mark.parametrize("ops", BATCHES.values(), ids=BATCHES.keys())
def test_a_batch_leaves_the_state_of_its_ops_one_at_a_time(
    tmp_path: Path, clock: FakeClock, ops: list[BatchOp], settled: bool
) -> None:
    """Reads, expiries and dead bytes as single ops would leave them; the marker is dead too."""
    seen = []
    for batched in (False, True):
        with Engine.open(tmp_path / str(batched), clock=clock) as db:
            _seed(db, clock, settled)
            _apply(db, ops, batched=batched)
            seen.append((_visible(db), db.stats()["dead_bytes"]))
            db.delete(b"k7")  # a key the batch added, removed, then an ordered read
            db.put(b"k8", b"later")
            seen.append((_visible(db), db.stats()["dead_bytes"]))
            clock.advance(15)
            seen.append((_visible(db), db.stats()["dead_bytes"]))
        clock.now -= 16
    marker = len(encode_record(BATCH_COMMIT, 99, 0.0, b"", BATCH_COUNT.pack(9)))
    for single, batch in zip(seen[:3], seen[3:], strict=True):
        assert batch[0] == single[0]
        assert batch[1] == single[1] + marker


def test_a_batch_writes_the_records_of_the_format(db: Engine, store_dir: Path) -> None:
    """The bytes on disk: each op framed as ``encode_record`` would, then the commit marker."""
    db.put(b"k", b"v")
    with db.batch() as batch:
        batch.put(b"a", b"1")
        batch.delete(b"k")
        batch.put(b"b", b"2", expires_at=2e9)
        batch.delete(b"missing")
    db.sync()
    expected = [
        encode_record(RecordType.PUT, 1, 0.0, b"k", b"v"),
        encode_record(RecordType.BATCH_PUT, 2, 0.0, b"a", b"1"),
        encode_record(RecordType.BATCH_DELETE, 3, 0.0, b"k"),
        encode_record(RecordType.BATCH_PUT, 4, 2e9, b"b", b"2"),
        encode_record(RecordType.BATCH_DELETE, 5, 0.0, b"missing"),
        encode_record(RecordType.BATCH_COMMIT, 6, 0.0, b"", BATCH_COUNT.pack(4)),
    ]
    data = (store_dir / segment_name(1)).read_bytes()
    written = b"".join(expected)
    assert data[FILE_HEADER_SIZE : FILE_HEADER_SIZE + len(written)] == written


@pytest.mark.parametrize(
    ("key", "value", "kwargs", "error"),
    [
        ("k", b"v", {}, TypeError),
        (b"k", "v", {}, TypeError),
        (b"", b"v", {}, ValueError),
        (b"k" * 101, b"v", {}, ValueError),
        (b"k", b"v" * 1001, {}, ValueError),
        (b"k", b"v", {"ttl": float("nan")}, ValueError),
    ],
)
def test_a_bad_batch_put_raises_and_queues_nothing(
    store_dir: Path, key: object, value: object, kwargs: dict[str, object], error: type
) -> None:
    with Engine.open(store_dir, max_key_size=100, max_value_size=1000) as db:
        with db.batch() as batch:
            batch.put(b"a", b"1")
            with pytest.raises(error):
                batch.put(key, value, **kwargs)  # type: ignore[arg-type]
            assert len(batch) == 1
        assert dict(db.scan()) == {b"a": b"1"}
        assert db.stats()["sequence"] == 2


def test_a_record_damaged_on_disk_is_refused_by_every_read(db: Engine, store_dir: Path) -> None:
    """get, get_entry and scan check the CRC of what they read: damage never comes back as data."""
    for i in range(3):
        db.put(b"key%d" % i, b"value %d" % i)
    (segment,) = store_dir.glob("*.seg")
    offset = segment.read_bytes().find(b"value 1")
    with open(segment, "r+b") as f:  # the engine's shared mapping sees the change at once
        f.seek(offset)
        f.write(b"VALUE 1")
    assert db.get(b"key0") == b"value 0"
    for read in (
        lambda: db.get(b"key1"),
        lambda: db.get_entry(b"key1"),
        lambda: list(db.scan()),
        lambda: list(db.scan(prefix=b"key1")),
    ):
        with pytest.raises(CorruptionError, match=r"0000000001\.seg.*CRC mismatch"):
            read()
    assert dict(db.scan(prefix=b"key2")) == {b"key2": b"value 2"}


def test_a_forged_hint_pointing_at_nothing_is_refused_by_every_read(store_dir: Path) -> None:
    """A hint re-sealed with a valid CRC can give a record no bytes; reads say CorruptionError.

    Found by the hint fuzzer: the reads' quick CRC check raised ``struct.error``
    on an empty slice instead of naming the damage.
    """
    values = {b"key%d" % i: b"%d" % i * 400 for i in range(8)}
    with Engine.open(store_dir, segment_size=4096) as db:
        for _ in range(2):  # overwrites, so that compaction has something to do
            for key, value in values.items():
                db.put(key, value)
        db.compact()
    hint_path = next(store_dir.glob("*" + HINT_SUFFIX))
    hint = decode_hint(hint_path.read_bytes(), hint_path.name)
    assert len(hint.keys) >= 3
    forged = HintBuilder()
    sizes = hint.sizes
    sizes[1:3] = [0, sizes[1] + sizes[2]]  # still back to back, spanning the segment
    for key, seq, size in zip(hint.keys, hint.seqs, sizes, strict=True):
        forged.add(key, seq, size, RecordType.PUT, NO_EXPIRY)
    hint_path.write_bytes(forged.encode())
    with Engine.open(store_dir, segment_size=4096) as db:
        assert db.get(hint.keys[0]) == values[hint.keys[0]]
        for read in (
            lambda: db.get(hint.keys[1]),
            lambda: db.get_entry(hint.keys[1]),
            lambda: list(db.scan()),
        ):
            with pytest.raises(CorruptionError):
                read()


@pytest.mark.parametrize(
    ("key", "value", "error"),
    [
        ("str", b"v", TypeError),
        (b"k", "str", TypeError),
        (None, b"v", TypeError),
        (b"k", 5, TypeError),
        (b"", b"v", ValueError),
        (b"k" * 101, b"v", ValueError),
        (b"k", b"v" * 1001, ValueError),
    ],
)
def test_bad_input_raises_and_writes_nothing(
    store_dir: Path, key: object, value: object, error: type[Exception]
) -> None:
    with Engine.open(store_dir, max_key_size=100, max_value_size=1000) as db:
        db.put(b"before", b"x")
        before = db.stats()
        with pytest.raises(error):
            db.put(key, value)  # type: ignore[arg-type]
        after = db.stats()
        assert (after["sequence"], after["disk_bytes"]) == (
            before["sequence"],
            before["disk_bytes"],
        )
        assert dict(db.scan()) == {b"before": b"x"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"ttl": "10"}, TypeError),
        ({"ttl": float("nan")}, ValueError),
        ({"expires_at": float("inf")}, ValueError),
        ({"expires_at": True}, TypeError),
    ],
)
def test_bad_expiry_writes_nothing(db: Engine, kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        db.put(b"k", b"v", **kwargs)  # type: ignore[arg-type]
    assert db.get(b"k") is None and db.stats()["sequence"] == 0


def test_bad_key_types_on_reads(db: Engine) -> None:
    with pytest.raises(TypeError):
        db.get("k")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        db.get(b"")
    with pytest.raises(TypeError):
        db.delete(3)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        db.scan(prefix="p")  # type: ignore[arg-type]
    assert "k" not in db  # type: ignore[operator]


@pytest.mark.parametrize(
    "options",
    [
        {"sync": "sometimes"},
        {"sync_interval": 0},
        {"segment_size": 10},
        {"max_key_size": 0},
        {"recovery": "hope"},
        {"clock": 5},
    ],
)
def test_bad_options_touch_nothing(tmp_path: Path, options: dict[str, object]) -> None:
    with pytest.raises((ValueError, TypeError)):
        Engine.open(tmp_path / "never", **options)  # type: ignore[arg-type]
    assert not (tmp_path / "never").exists()


def test_second_open_in_process_is_refused(db: Engine, store_dir: Path) -> None:
    with pytest.raises(LockedError, match=str(store_dir)):
        Engine.open(store_dir)
    assert db.get(b"x") is None


def test_second_open_from_another_process_is_refused(db: Engine, store_dir: Path) -> None:
    db.put(b"k", b"v")
    code = (
        "import sys\n"
        "from engine import Engine, LockedError\n"
        "try:\n"
        f"    Engine.open({str(store_dir)!r})\n"
        "except LockedError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3, result.stderr
    assert str(store_dir) in result.stdout
    assert db.get(b"k") == b"v"


def test_lock_is_released_on_close(store_dir: Path) -> None:
    Engine.open(store_dir).close()
    with Engine.open(store_dir) as db:
        db.put(b"k", b"v")


def test_closed_engine_refuses_work(store_dir: Path) -> None:
    db = Engine.open(store_dir)
    db.put(b"k", b"v")
    db.close()
    db.close()
    assert db.closed
    for call in (lambda: db.get(b"k"), lambda: db.put(b"k", b"v"), lambda: db.scan()):
        with pytest.raises(ClosedError):
            call()


def test_fsync_failure_fails_the_engine_until_reopen() -> None:
    fs = MemoryFileSystem()
    db = Engine.open("/store", fs=fs, sync="always")
    db.put(b"kept", b"1")

    def fail_fsync(op: Op) -> None:
        if op[0] == "fsync":
            raise OSError(5, "EIO")

    fs.hook = fail_fsync
    with pytest.raises(FailedError):
        db.put(b"lost", b"2")
    for call in (lambda: db.put(b"k", b"v"), lambda: db.get(b"kept"), db.sync):
        with pytest.raises(FailedError):
            call()
    assert db.stats()["failed"]
    db.close()
    fs.hook = None
    with Engine.open("/store", fs=fs) as again:
        assert again.get(b"kept") == b"1"
        again.put(b"new", b"3")
        assert again.get(b"new") == b"3"


def test_a_failed_open_releases_the_lock(store_dir: Path) -> None:
    with Engine.open(store_dir, segment_size=100) as db:
        for i in range(10):
            db.put(b"k%d" % i, b"v" * 20)
    first = sorted(p for p in os.listdir(store_dir) if p.endswith(".seg"))[0]
    with open(store_dir / first, "r+b") as f:
        f.seek(40)
        f.write(b"\xff\xff")
    with pytest.raises(StorageError):
        Engine.open(store_dir, segment_size=100)
    with Engine.open(store_dir, segment_size=100, recovery="skip_any_corrupted") as db:
        assert db.stats()["recovery"]["skipped_bytes"] > 0


def test_stats_shape(db: Engine) -> None:
    db.put(b"a", b"1")
    db.put(b"a", b"2")
    stats = db.stats()
    assert stats["keys"] == 1
    assert stats["writes"] == 2
    assert stats["dead_bytes"] > 0
    assert stats["live_bytes"] > 0
    assert stats["recovery"]["truncated_bytes"] == 0
    assert set(stats["segments"]) == {stats["active_segment"]}


def test_an_engine_dropped_without_close_lets_its_threads_end() -> None:
    """The sync and compaction threads hold the engine weakly: no thread outlives it."""
    fs = MemoryFileSystem()
    db = Engine.open("/dropped", fs=fs, sync_interval=0.01, compact_interval=0.01)
    db.put(b"k", b"v")
    threads = [t for t in threading.enumerate() if t.name.endswith(" /dropped")]
    assert len(threads) == 2
    del db
    deadline = time.monotonic() + 10
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.02)
    assert not any(t.is_alive() for t in threads)
