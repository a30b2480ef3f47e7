"""``LogStore(path, readonly=True)`` and ``shared=True`` beside a LogStore in another process."""

from __future__ import annotations

import multiprocessing
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from store_api import LogStore, NotFoundError, ReadOnlyError, Record, StorageError

_fork = multiprocessing.get_context("fork")


def _owner(path: str, pipe: Connection, shared: bool = False) -> None:
    with LogStore(path, sync="none", shared=shared) as store:
        pipe.send("ready")
        while (key := pipe.recv()) is not None:
            if key.startswith("-"):
                store.delete(key[1:])
            else:
                store.write(Record(key, key.encode() * 100, {"n": len(key)}))
            pipe.send("ok")


def test_a_readonly_logstore_follows_an_owner_process(tmp_path: Path) -> None:
    path = tmp_path / "store"
    pipe, child = _fork.Pipe()
    process = _fork.Process(target=_owner, args=(str(path), child), daemon=True)
    process.start()
    assert pipe.recv() == "ready"
    reader = LogStore(path, readonly=True)
    try:
        for key in ("alpha", "beta", "gamma", "-beta"):
            pipe.send(key)
            assert pipe.recv() == "ok"
        assert reader.list() == ["alpha", "gamma"]
        record = reader.read("gamma")[0]
        assert record.value == b"gamma" * 100 and record.metadata == {"n": 5}
        with pytest.raises(NotFoundError):
            reader.read("beta")
        before = {p.name: p.read_bytes() for p in path.iterdir() if p.suffix == ".seg"}
        for attempt in (
            lambda: reader.write(Record("delta", b"x")),
            lambda: reader.delete("alpha"),
        ):
            with pytest.raises(ReadOnlyError):
                attempt()
        assert issubclass(ReadOnlyError, StorageError)
        assert {p.name: p.read_bytes() for p in path.iterdir() if p.suffix == ".seg"} == before
        assert reader.list() == ["alpha", "gamma"]
    finally:
        reader.disconnect()
        pipe.send(None)
        process.join(30)


def test_shared_logstores_in_two_processes_read_and_write_the_same_tables(tmp_path: Path) -> None:
    path = tmp_path / "store"
    pipe, child = _fork.Pipe()
    process = _fork.Process(target=_owner, args=(str(path), child, True), daemon=True)
    process.start()
    assert pipe.recv() == "ready"
    mine = LogStore(path, shared=True)
    reader = LogStore(path, readonly=True)
    try:
        mine.write(Record("mine.txt", b"here"))
        assert [r.key for r in reader.read(".txt", suffix=True)] == ["mine.txt"]
        for key in ("theirs.txt", "other.bin"):
            pipe.send(key)
            assert pipe.recv() == "ok"
        # Suffix queries see the other process's keys, written after the first query.
        for store in (mine, reader):
            assert [r.key for r in store.read(".txt", suffix=True)] == ["mine.txt", "theirs.txt"]
            assert store.list(suffix=".bin") == ["other.bin"]
        pipe.send("-mine.txt")
        assert pipe.recv() == "ok"
        assert mine.list() == ["other.bin", "theirs.txt"]
        mine.delete("theirs.txt")
        assert reader.list() == ["other.bin"]
    finally:
        reader.disconnect()
        mine.disconnect()
        pipe.send(None)
        process.join(30)
    with LogStore(path) as alone:
        assert alone.list() == ["other.bin"]
