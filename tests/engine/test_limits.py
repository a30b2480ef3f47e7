"""Limits of the process and the file system (issue 17): a descriptor limit of 64 with
hundreds of segments, and read-only directories, each work or fail with a clear
``StorageError`` naming the store, never a raw ``OSError`` and never a lost write."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import mount_tmpfs

from engine import Engine, StorageError

ROOT = Path(__file__).resolve().parents[2]

#: Runs in a child with at most 64 open files; prints what happened as one line.
CHILD = textwrap.dedent(
    """
    import resource, sys
    from engine import Engine, StorageError
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    path, action = sys.argv[1], sys.argv[2]
    acked = 0
    try:
        db = Engine.open(path, sync="always", segment_size=4096, auto_compact=False)
        if action == "fill":
            for i in range(2000):
                db.put(b"n%05d" % i, bytes(1000))
                acked += 1
        print("ok", acked, db.get(b"k000001") is not None)
    except StorageError as exc:
        print("refused", acked, type(exc).__name__, exc)
    """
)


def child(path: Path, action: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), action],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    # stderr may hold the engine's log lines, never a traceback.
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr
    return result.stdout.strip()


def segments(path: Path, count: int) -> None:
    """A store of ``count`` sealed segments of about four records each."""
    with Engine.open(path, sync="none", segment_size=4096, auto_compact=False) as db:
        for i in range(count * 4):
            db.put(b"k%06d" % i, bytes(1000))


def test_few_segments_work_under_a_limit_of_64_files(tmp_path: Path) -> None:
    segments(tmp_path / "store", 20)
    assert child(tmp_path / "store", "open") == "ok 0 True"


def test_hundreds_of_segments_are_refused_clearly_at_open(tmp_path: Path) -> None:
    segments(tmp_path / "store", 300)
    out = child(tmp_path / "store", "open")
    assert out.startswith("refused 0 StorageError cannot open the store"), out
    assert "Too many open files" in out and "ulimit -n" in out
    with Engine.open(tmp_path / "store") as db:  # nothing was changed by the refusal
        assert sum(1 for _ in db.scan_keys()) == 1200


def test_running_out_of_files_while_writing_loses_nothing(tmp_path: Path) -> None:
    out = child(tmp_path / "store", "fill")
    word, acked, kind, *message = out.split()
    assert (word, kind) == ("refused", "FailedError"), out
    assert "Too many open files" in " ".join(message)
    with Engine.open(tmp_path / "store") as db:
        assert all(db.get(b"n%05d" % i) == bytes(1000) for i in range(int(acked)))


@pytest.fixture
def read_only(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs holding a store, remounted read-only."""
    where = tmp_path / "ro"
    mount_tmpfs(where, "size=8m")
    try:
        with Engine.open(where / "store") as db:
            db.put(b"k", b"v")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_read_only_store_is_refused_naming_the_path(read_only: Path) -> None:
    with pytest.raises(StorageError, match=r"cannot open the store .*store.*writable"):
        Engine.open(read_only / "store")
    with pytest.raises(StorageError, match=r"cannot open the store .*new.*writable"):
        Engine.open(read_only / "new")
