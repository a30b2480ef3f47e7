"""A full disk (issue 17): writes fall back to smaller reservations, a write that finds no
room raises ``DiskFullError`` with nothing written, reads go on, writes work again once
space is freed (no reopen), compaction checks for room first, and nothing acknowledged
is lost. On the in-memory file system with a capacity, and on a real 3 MiB tmpfs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import DiskFullError, Engine
from engine.testing import MemoryFileSystem
from store_api import LogStore, Record

VALUE = bytes(1000)


def fill(db: Engine, acked: dict[bytes, bytes], prefix: bytes = b"k") -> DiskFullError:
    """Put VALUE-sized records until the disk is full; every returned put goes in ``acked``."""
    for i in range(100_000):
        key = b"%s%06d" % (prefix, i)
        try:
            db.put(key, VALUE)
        except DiskFullError as exc:
            assert db.get(key) is None, "a refused put left its key behind"
            return exc
        acked[key] = VALUE
    raise AssertionError("the disk never filled")


def test_a_full_disk_is_used_up_then_refused_then_usable_again() -> None:
    fs = MemoryFileSystem()
    fs.capacity = 3 << 20
    acked: dict[bytes, bytes] = {}
    db = Engine.open("/store", fs=fs, sync="always", auto_compact=False)
    error = fill(db, acked)
    # Doubling alone would have stopped with about a megabyte still free.
    assert fs.free_bytes("/store") < len(VALUE) + 64, fs.free_bytes("/store")
    assert "nothing was written" in str(error)
    assert not db.stats()["failed"]
    assert all(db.get(key) == value for key, value in acked.items())
    with pytest.raises(DiskFullError), db.batch() as batch:
        batch.put(b"batch-a", VALUE)
        batch.put(b"batch-b", VALUE)
    assert db.get(b"batch-a") is None and db.get(b"batch-b") is None

    fs.capacity += 64 << 10  # space freed elsewhere: no reopen needed
    db.put(b"after", b"freed")
    acked[b"after"] = b"freed"
    db.close()
    with Engine.open("/store", fs=fs) as again:
        assert {key: again.get(key) for key in acked} == acked


def test_compaction_checks_for_room_before_writing() -> None:
    fs = MemoryFileSystem()
    db = Engine.open("/store", fs=fs, sync="none", segment_size=256 << 10, auto_compact=False)
    for round_ in range(3):
        for i in range(400):
            db.put(b"k%04d" % i, VALUE + bytes([round_]))
    files = set(fs.listdir("/store"))
    fs.capacity = fs.used_bytes() + (64 << 10)
    with pytest.raises(DiskFullError, match="needs room for"):
        db.compact()
    new = set(fs.listdir("/store")) - files
    assert all(name.endswith(".seg") for name in new), new  # a rollover, but no output
    assert all(db.get(b"k%04d" % i) == VALUE + b"\x02" for i in range(400))
    fs.capacity = None
    assert db.compact().records_out == 400
    db.close()


def test_logstore_on_a_full_tmpfs_recovers_without_reopening(tmpfs: Path) -> None:
    ballast = tmpfs / "ballast"
    ballast.write_bytes(bytes(512 << 10))
    acked: list[str] = []
    store = LogStore(tmpfs / "store", sync="always")
    with pytest.raises(DiskFullError):
        for i in range(100_000):
            store.write(Record(f"k{i:06d}", VALUE))
            acked.append(f"k{i:06d}")
    assert len(acked) > 1500  # most of the 2.5 MiB left was used
    assert store.read(acked[-1])[0].value == VALUE  # reads go on
    ballast.unlink()  # free 512 KiB: the next write works, no reopen
    store.write(Record("after", b"freed"))
    acked.append("after")
    store.disconnect()
    again = LogStore(tmpfs / "store")
    assert again.list() == sorted(acked)
    again.disconnect()
