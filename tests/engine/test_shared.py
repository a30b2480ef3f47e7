"""Several processes writing one store (``Engine.open(path, shared=True)``), in real processes.

A peer engine runs in a child process and runs each command sent over a pipe
(a method name and its arguments) before answering; the test process holds
another shared engine. A killed append is made for real: a child takes the
append lock, stores part of a unit after the last record and SIGKILLs itself.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from engine import CorruptionError, Engine, LockedError
from engine.catchup import scan_units
from engine.filelock import FileLock
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_PUT,
    FILE_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
    encode_record,
)
from engine.fs import OSFileSystem
from engine.segment import list_segments, segment_name
from engine.shared import APPEND_FILE
from engine.testing.mutants import MutantFileSystem

SEGMENT_SIZE = 16 << 10
_fork = multiprocessing.get_context("fork")


def _open(path: Path | str, **options: Any) -> Engine:
    settings: dict[str, Any] = {"segment_size": SEGMENT_SIZE, "auto_compact": False}
    return Engine.open(path, shared=True, **{**settings, **options})


def _serve(path: str, commands: Connection) -> None:
    db = _open(path)
    commands.send("ready")
    while True:
        method, args = commands.recv()
        if method == "puts":  # many puts in one command
            for key, value in args[0]:
                db.put(key, value)
            result: Any = None
        else:
            result = getattr(db, method)(*args)
        if method == "close":
            commands.send(None)
            return
        commands.send(result if method in ("get", "__len__") else None)


class Peer:
    """A shared engine in another process: ``peer("put", key, value)``."""

    def __init__(self, path: Path) -> None:
        self.pipe, child = _fork.Pipe()
        self.process = _fork.Process(target=_serve, args=(str(path), child), daemon=True)
        self.process.start()
        assert self.pipe.recv() == "ready"

    def __call__(self, method: str, *args: Any) -> Any:
        self.pipe.send((method, args))
        return self.pipe.recv()

    def close(self) -> None:
        self("close")
        self.process.join()


def test_each_process_sees_the_others_writes_deletes_and_batches(tmp_path: Path) -> None:
    with _open(tmp_path) as db:
        peer = Peer(tmp_path)
        peer("put", b"a", b"from the peer")
        assert db.get(b"a") == b"from the peer"
        db.put(b"b", b"from the test")
        assert peer("get", b"b") == b"from the test"
        db.delete(b"a")
        assert peer("get", b"a") is None
        with db.batch() as batch:
            batch.put(b"c", b"1")
            batch.delete(b"b")
        assert peer("get", b"c") == b"1" and peer("get", b"b") is None
        assert peer("__len__") == len(db) == 1
        peer.close()
    with Engine.open(tmp_path) as alone:
        assert dict(alone.scan()) == {b"c": b"1"}


def test_interleaved_writers_roll_over_and_compact_and_lose_nothing(tmp_path: Path) -> None:
    expected: dict[bytes, bytes] = {}
    with _open(tmp_path) as db:
        peer = Peer(tmp_path)
        for round_ in range(6):
            mine = [(b"t%03d" % n, b"test %d " % round_ * 30) for n in range(40)]
            theirs = [(b"p%03d" % n, b"peer %d " % round_ * 30) for n in range(40)]
            for key, value in mine:
                db.put(key, value)
            peer("puts", theirs)
            expected.update(mine + theirs)
            if round_ == 3:
                peer("compact")  # the test's engine adopts the peer's output
            assert dict(db.scan()) == expected
        db.compact()
        assert peer("__len__") == len(expected)
        assert all(peer("get", key) == value for key, value in list(expected.items())[::17])
        peer.close()
        assert list_segments(OSFileSystem(), str(tmp_path))[-1] > 3  # it rolled over
    with Engine.open(tmp_path) as alone:
        assert dict(alone.scan()) == expected
        assert alone.stats()["recovery"]["damage"] == []


def test_an_exclusive_owner_and_shared_openers_exclude_each_other(tmp_path: Path) -> None:
    with Engine.open(tmp_path), pytest.raises(LockedError):
        _open(tmp_path)
    with _open(tmp_path), _open(tmp_path), pytest.raises(LockedError):
        Engine.open(tmp_path)


def test_shared_refuses_readonly_and_a_file_system_without_process_locks(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exclude"):
        Engine.open(tmp_path, shared=True, readonly=True)
    plain = MutantFileSystem(OSFileSystem())  # a FileSystem without locks between processes
    for option in ("shared", "readonly"):
        with pytest.raises(ValueError, match="SharedFileSystem"):
            Engine.open(tmp_path, fs=plain, **{option: True})


def _die_in_append(path: str, store: Callable[[int, int], None]) -> None:
    """Take the append lock, store part of a unit after the last record, and be killed."""
    with FileLock(os.path.join(path, APPEND_FILE)):
        newest = list_segments(OSFileSystem(), path)[-1]
        name = os.path.join(path, segment_name(newest))
        fd = os.open(name, os.O_RDWR)
        data = os.pread(fd, os.fstat(fd).st_size, 0)
        consumed, _records, _need = scan_units(data[FILE_HEADER_SIZE:])
        store(fd, FILE_HEADER_SIZE + consumed)
        os.kill(os.getpid(), signal.SIGKILL)


_RECORD = encode_record(PUT, 10**6, NO_EXPIRY, b"torn", b"v" * 600)
_MEMBERS = encode_record(BATCH_PUT, 10**6, NO_EXPIRY, b"half", b"v" * 300) * 2
_UNCOMMITTED = (
    _MEMBERS + encode_record(BATCH_COMMIT, 10**6, NO_EXPIRY, b"", BATCH_COUNT.pack(2))[:9]
)

TORN_APPENDS: dict[str, Callable[[int, int], Any]] = {
    "a record cut short": lambda fd, end: os.pwrite(fd, _RECORD[:300], end),
    "a record without its first 32 bytes": lambda fd, end: os.pwrite(fd, _RECORD[32:], end + 32),
    "a batch without its commit": lambda fd, end: os.pwrite(fd, _UNCOMMITTED, end),
}


@pytest.mark.parametrize("torn", TORN_APPENDS)
def test_a_process_killed_holding_the_append_lock_loses_nothing_acknowledged(
    tmp_path: Path, torn: str
) -> None:
    reader = None
    with _open(tmp_path) as db:
        for n in range(50):
            db.put(b"k%02d" % n, b"before %d" % n)
        reader = Engine.open(tmp_path, readonly=True)
        child = _fork.Process(target=_die_in_append, args=(str(tmp_path), TORN_APPENDS[torn]))
        child.start()
        child.join()
        assert child.exitcode == -signal.SIGKILL
        assert len(reader) == 50 and reader.get(b"torn") is None and reader.get(b"half") is None
        db.put(b"after", b"the kill")  # clears the torn bytes, then appends
        assert reader.get(b"after") == b"the kill" and len(reader) == 51
        assert db.get(b"torn") is None and db.get(b"half") is None
        reader.close()
    with Engine.open(tmp_path, recovery="absolute_consistency") as alone:
        assert len(alone) == 51 and alone.get(b"after") == b"the kill"
        assert all(alone.get(b"k%02d" % n) == b"before %d" % n for n in range(50))


def test_valid_records_after_damage_are_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with _open(tmp_path) as db:
        db.put(b"a", b"1")
        # The valid record's value ends in zeros: they are its own, not the reserve's.
        damaged = b"\xff" * 64 + encode_record(PUT, 10**6, NO_EXPIRY, b"z", bytes(8))
        child = _fork.Process(
            target=_die_in_append, args=(str(tmp_path), lambda fd, end: os.pwrite(fd, damaged, end))
        )
        child.start()
        child.join()
        segment = tmp_path / segment_name(list_segments(OSFileSystem(), str(tmp_path))[-1])
        before = segment.read_bytes()
        with pytest.raises(CorruptionError, match="followed by valid records"):
            db.put(b"b", b"2")
        assert segment.read_bytes() == before
        assert db.get(b"a") == b"1"


def test_a_segment_whose_creation_was_killed_is_created_again(tmp_path: Path) -> None:
    with _open(tmp_path) as db:
        db.put(b"a", b"1")
        newest = list_segments(OSFileSystem(), str(tmp_path))[-1]
        with FileLock(str(tmp_path / APPEND_FILE)):
            # What a rollover killed after cutting the old segment and before the header.
            fd = os.open(tmp_path / segment_name(newest), os.O_RDWR)
            end = FILE_HEADER_SIZE + scan_units(os.pread(fd, 1 << 20, FILE_HEADER_SIZE))[0]
            os.ftruncate(fd, end)
            os.close(fd)
            (tmp_path / segment_name(newest + 1)).write_bytes(b"SEG")
        db.put(b"b", b"2")
        assert db.get(b"a") == b"1" and db.get(b"b") == b"2"
    with Engine.open(tmp_path, recovery="absolute_consistency") as alone:
        assert dict(alone.scan()) == {b"a": b"1", b"b": b"2"}


@pytest.mark.parametrize(("sync", "fsyncs"), [("always", True), ("none", False)])
def test_sync_modes_keep_their_promise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sync: str, fsyncs: bool
) -> None:
    calls: list[int] = []
    real = os.fsync
    with _open(tmp_path, sync=sync) as db:
        db.put(b"warm", b"up")
        monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
        db.put(b"a", b"1")
        assert bool(calls) is fsyncs
        db.sync()
        assert calls


def _batches(path: str, writer: int, count: int) -> None:
    with _open(path, auto_compact=True, compact_min_bytes=16 << 10, compact_interval=0.02) as db:
        for i in range(1, count + 1):
            with db.batch() as batch:
                batch.put(b"k%d:%d" % (writer, i % 16), b"%d" % i)
                batch.put(b"last%d" % writer, b"%d" % i)


def test_writers_keep_their_place_while_their_own_compactions_swap_the_view(
    tmp_path: Path,
) -> None:
    """Each process compacts automatically and adopts the others' manifests while it
    appends: a view swapped in the middle of an append once applied its records twice
    and moved its end past them (appends then overlapped)."""
    _open(tmp_path).close()
    writers = [_fork.Process(target=_batches, args=(str(tmp_path), n, 1500)) for n in range(2)]
    for process in writers:
        process.start()
    for process in writers:
        process.join()
        assert process.exitcode == 0
    with Engine.open(tmp_path, recovery="absolute_consistency") as alone:
        for n in range(2):
            assert alone.get(b"last%d" % n) == b"1500"
            assert all(alone.get(b"k%d:%d" % (n, i % 16)) == b"%d" % i for i in range(1485, 1501))
