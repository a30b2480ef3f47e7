"""Readers (``Engine.open(path, readonly=True)``) beside an owner in another, real process.

The owner runs in a child process and answers each command over a pipe once
the write is acknowledged; the reader is an engine in the test process. Every
acknowledged write must be visible to the reader's next call, across
rollovers, compaction and the owner's SIGKILL followed by a new owner; a
reader never shows a half-written batch or a state older than one it showed.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from engine import Engine, ReadOnlyError, StorageError
from engine.catchup import scan_units
from engine.format import BATCH_COMMIT, BATCH_COUNT, BATCH_PUT, NO_EXPIRY, PUT, encode_record

#: Small segments, so that a few hundred records roll over several times.
SEGMENT_SIZE = 16 << 10
#: Values past 256 bytes: memcpy stores their first 32 bytes last (docs/MULTIPROCESS.md).
BIG = 600

_fork = multiprocessing.get_context("fork")


def _owner(path: str, commands: Connection) -> None:
    """The owner process: apply each command, then acknowledge it."""
    db = Engine.open(path, segment_size=SEGMENT_SIZE, auto_compact=False, sync="none")
    commands.send("ready")
    while True:
        command, *args = commands.recv()
        if command == "put":
            db.put(args[0], args[1], expires_at=None if args[2] == NO_EXPIRY else args[2])
        elif command == "delete":
            db.delete(args[0])
        elif command == "batch":
            with db.batch() as batch:
                for key, value in args[0]:
                    batch.put(key, value)
        elif command == "compact":
            db.compact()
        elif command == "batches":  # many batches, each of pairs holding one counter
            for n in range(args[0]):
                value = b"%08d" % n * (BIG // 8)
                with db.batch() as batch:
                    batch.put(b"pair-a", value)
                    batch.put(b"pair-b", value)
        elif command == "stream":  # puts acknowledged one by one until killed
            for n in range(args[0]):
                db.put(b"stream%06d" % n, b"%06d" % n * (BIG // 6))
                commands.send(n)
        elif command == "close":
            db.close()
            commands.send("closed")
            return
        commands.send("ok")


class Owner:
    """An owner process and the pipe to command it."""

    def __init__(self, path: Path) -> None:
        self.pipe, child = _fork.Pipe()
        self.process = _fork.Process(target=_owner, args=(str(path), child), daemon=True)
        self.process.start()
        assert self.pipe.recv() == "ready"

    def __call__(self, *command: Any) -> Any:
        self.pipe.send(command)
        return self.pipe.recv()

    def close(self) -> None:
        assert self("close") == "closed"
        self.process.join(30)

    def kill(self) -> None:
        assert self.process.pid is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.join(30)


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


def test_a_reader_sees_every_acknowledged_write_across_rollover_and_compaction(
    store: Path,
) -> None:
    owner = Owner(store)
    owner("put", b"first", b"1", NO_EXPIRY)
    with Engine.open(store, readonly=True) as reader:
        assert reader.get(b"first") == b"1"
        expected: dict[bytes, bytes] = {b"first": b"1"}
        for i in range(120):  # about 5 rollovers
            key, value = b"key%03d" % i, b"%03d" % i * (BIG // 3)
            owner("put", key, value, NO_EXPIRY)
            expected[key] = value
            assert reader.get(key) == value
        assert reader.stats()["segment_count"] > 3
        for i in range(0, 120, 2):
            owner("delete", b"key%03d" % i)
            del expected[b"key%03d" % i]
            assert reader.get(b"key%03d" % i) is None
        owner("compact")
        owner("put", b"after", b"compaction", NO_EXPIRY)
        expected[b"after"] = b"compaction"
        assert dict(reader.scan()) == expected
        owner.close()
        # The closed owner's file ends where the reader is: it compares the manifest
        # and adopts the compacted view, whose inputs the owner deleted.
        assert dict(reader.scan()) == expected
        assert any(name.endswith(".cseg") for name in reader.stats()["segments"])
        on_disk = {p.name for p in store.iterdir()}
        assert set(reader.stats()["segments"]) <= on_disk
        assert len(reader) == len(expected)


def test_an_idle_reader_catches_up_after_compaction_deleted_what_it_never_saw(
    store: Path,
) -> None:
    """The segments after the followed one were written and compacted away meanwhile."""
    owner = Owner(store)
    owner("put", b"first", b"1", NO_EXPIRY)
    with Engine.open(store, readonly=True) as reader:
        assert reader.get(b"first") == b"1"
        for i in range(100):
            owner("put", b"key%03d" % (i % 10), b"%03d" % i * (BIG // 3), NO_EXPIRY)
        owner("compact")
        owner("put", b"last", b"2", NO_EXPIRY)
        assert reader.get(b"last") == b"2"
        assert reader.get(b"key009") == b"099" * (BIG // 3)
        assert len(reader) == 12
        owner.close()


def test_expiry_and_deletes_reach_the_reader(store: Path) -> None:
    owner = Owner(store)
    with Engine.open(store, readonly=True) as reader:
        owner("put", b"gone", b"x", 1.0)  # expired long ago: acts as a delete
        owner("put", b"later", b"y", 4e9)
        owner("put", b"doomed", b"z", NO_EXPIRY)
        owner("delete", b"doomed")
        assert reader.get(b"gone") is None
        assert reader.get_entry(b"later") == (b"y", 4e9)
        assert b"doomed" not in reader
        assert list(reader.scan_keys()) == [b"later"]
        owner.close()


def test_a_reader_never_shows_half_a_batch_or_goes_back(store: Path) -> None:
    owner = Owner(store)
    owner("put", b"pair-a", b"-", NO_EXPIRY)  # sorts before every counter
    owner("put", b"pair-b", b"-", NO_EXPIRY)
    with Engine.open(store, readonly=True) as reader:
        owner.pipe.send(("batches", 400))
        last, seen = b"-", 0
        while not owner.pipe.poll():
            a, b = reader.get(b"pair-a"), reader.get(b"pair-b")
            pair = dict(reader.scan(prefix=b"pair-"))
            assert a is not None and b is not None
            assert pair[b"pair-a"] == pair[b"pair-b"]
            # b was read after a: the same batch or a later one, never an earlier one.
            assert b == a or b[:8] > a[:8]
            assert a[:8] >= last and pair[b"pair-a"][:8] >= b[:8]
            last = pair[b"pair-a"][:8]
            seen += a != b"-"
        assert owner.pipe.recv() == "ok"
        assert reader.get(b"pair-a") == b"%08d" % 399 * (BIG // 8)
        assert seen, "the reader never ran while batches were written"
        owner.close()


def test_a_killed_owner_and_its_successor(store: Path) -> None:
    owner = Owner(store)
    owner("put", b"before", b"kill", NO_EXPIRY)
    reader = Engine.open(store, readonly=True)
    owner.pipe.send(("stream", 100_000))
    acknowledged = -1
    for _ in range(150):  # several rollovers, then a SIGKILL in the middle of puts
        acknowledged = owner.pipe.recv()
    owner.kill()
    for n in range(acknowledged + 1):
        assert reader.get(b"stream%06d" % n) == b"%06d" % n * (BIG // 6)
    shown = len(reader)
    # A new owner recovers (it may cut a torn tail the reader never applied) and writes on.
    successor = Owner(store)
    successor("put", b"successor", b"here", NO_EXPIRY)
    assert reader.get(b"successor") == b"here"
    assert len(reader) >= shown + 1
    for n in range(acknowledged + 1):
        assert reader.get(b"stream%06d" % n) == b"%06d" % n * (BIG // 6)
    with successor.pipe:
        successor.close()
    with Engine.open(store) as reopened:
        assert dict(reader.scan()) == dict(reopened.scan())
    reader.close()


def test_writes_through_a_reader_are_refused_and_change_nothing(store: Path) -> None:
    with Engine.open(store) as db:
        db.put(b"k", b"v")
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    with Engine.open(store, readonly=True) as reader:
        attempts = [
            lambda: reader.put(b"k", b"w"),
            lambda: reader.delete(b"k"),
            reader.batch,
            reader.compact,
            reader.sync,
            lambda: reader.checkpoint(store.parent / "copy"),
            lambda: reader.__setitem__(b"k", b"w"),
        ]
        for attempt in attempts:
            with pytest.raises(ReadOnlyError, match="read-only"):
                attempt()
        assert reader.get(b"k") == b"v"
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before
    assert not (store.parent / "copy").exists()
    with pytest.raises(StorageError, match="closed"):
        reader.get(b"k")


def test_a_reader_does_not_repair_a_torn_tail(store: Path) -> None:
    """Opening read-only a store whose owner died mid-write changes no byte of it."""
    with Engine.open(store) as db:
        db.put(b"k", b"v")
    segment = sorted(store.glob("*.seg"))[-1]
    torn = encode_record(PUT, 99, NO_EXPIRY, b"torn", b"x" * BIG)
    with segment.open("ab") as file:
        file.write(torn[: len(torn) // 2])
    before = {p.name: p.read_bytes() for p in store.iterdir()}
    with Engine.open(store, readonly=True) as reader:
        assert reader.get(b"k") == b"v"
        assert reader.get(b"torn") is None
    assert {p.name: p.read_bytes() for p in store.iterdir()} == before


@pytest.mark.parametrize("kind", ["missing", "empty", "file"])
def test_a_path_that_is_not_a_store(tmp_path: Path, kind: str) -> None:
    path = tmp_path / kind
    if kind == "empty":
        path.mkdir()
    elif kind == "file":
        path.write_text("not a store")
    with pytest.raises(StorageError, match=str(path)):
        Engine.open(path, readonly=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ([kind] if kind != "missing" else [])
    if kind == "empty":
        assert not any(path.iterdir())


def test_catch_up_applies_complete_units_only() -> None:
    """What an owner's store in flight looks like to a reader: stop before it, no error."""
    put = encode_record(PUT, 1, NO_EXPIRY, b"a", b"x" * BIG)
    members = [encode_record(BATCH_PUT, s, NO_EXPIRY, b"b%d" % s, b"y" * BIG) for s in (2, 3)]
    commit = encode_record(BATCH_COMMIT, 4, NO_EXPIRY, b"", BATCH_COUNT.pack(2))
    batch = b"".join(members) + commit
    whole = put + batch + bytes(4096)
    consumed, records, _need = scan_units(whole)
    assert consumed == len(put + batch) and [r[3] for r in records] == [1, 2, 3, 4]
    # memcpy's order: a record's later bytes stored, its first 32 not yet.
    late_head = put + bytes(32) + batch[32:]
    assert scan_units(late_head)[:2] == (len(put), [scan_units(put)[1][0]])
    # A batch whose commit is not stored yet: nothing of it.
    assert scan_units(put + b"".join(members) + bytes(64))[0] == len(put)
    # A commit that counts otherwise drops its batch, as recovery does, and goes on.
    wrong = encode_record(BATCH_COMMIT, 4, NO_EXPIRY, b"", BATCH_COUNT.pack(5))
    consumed, records, _need = scan_units(b"".join(members) + wrong + put)
    assert [r[3] for r in records] == [1]
    # The end of what was read is not the end of the record: ask for more.
    assert scan_units(put[:100])[2] == len(put)
