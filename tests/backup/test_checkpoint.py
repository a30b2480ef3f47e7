"""Engine.checkpoint: a consistent, openable copy of a live store."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_helpers import Writers, prefix_problems

from engine import ClosedError, Engine, StorageError
from engine.checkpoint import MARKER, IncompleteCheckpointError
from engine.manifest import MANIFEST
from engine.testing.memfs import MemoryFileSystem, Op


def fill(db: Engine, count: int, *, prefix: str = "k", size: int = 40) -> dict[bytes, bytes]:
    written = {}
    for i in range(count):
        key, value = f"{prefix}{i:05d}".encode(), f"{prefix}-{i}".encode().ljust(size, b".")
        db.put(key, value)
        written[key] = value
    return written


def read_all(path: Path | str, **options: object) -> dict[bytes, bytes]:
    with Engine.open(path, auto_compact=False, **options) as db:  # type: ignore[arg-type]
        return dict(db.scan())


def test_checkpoint_holds_the_state_at_its_sequence_and_nothing_later(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        expected = fill(db, 300)
        db.delete(b"k00007")
        del expected[b"k00007"]
        report = db.checkpoint(tmp_path / "ckpt")
        fill(db, 50, prefix="later")
        db.put(b"k00001", b"changed after")
        assert report.sequence == 301
        assert report.files_linked >= 2 and report.files_copied == 1  # the active segment
        assert report.bytes_copied < 4096
    assert read_all(tmp_path / "ckpt") == expected
    assert not (tmp_path / "ckpt" / MARKER).exists()


def test_sealed_segments_are_hard_links_and_the_active_one_a_copy(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        fill(db, 300)
        active = db.stats()["active_segment"]
        db.checkpoint(tmp_path / "ckpt")
        for name in os.listdir(tmp_path / "ckpt"):
            same = os.path.samefile(tmp_path / "src" / name, tmp_path / "ckpt" / name)
            assert same == (name != active), name
        fill(db, 10, prefix="more")  # the source's active segment goes on; the copy does not
    with Engine.open(tmp_path / "ckpt", auto_compact=False) as copy:
        copy.put(b"in the copy", b"only")  # appends to its own copy of the active segment
    assert b"in the copy" not in read_all(tmp_path / "src")


def test_compacted_store_checkpoint_has_its_manifest_and_hints(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        fill(db, 200)
        expected = fill(db, 200)  # overwrite everything: the first half is dead
        db.compact()
        expected.update(fill(db, 20, prefix="after"))
        db.checkpoint(tmp_path / "ckpt")
    names = os.listdir(tmp_path / "ckpt")
    assert MANIFEST in names and any(n.endswith(".cseg") for n in names)
    assert any(n.endswith(".hint") for n in names)
    assert read_all(tmp_path / "ckpt") == expected


def test_link_false_copies_everything(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        expected = fill(db, 300)
        report = db.checkpoint(tmp_path / "ckpt", link=False)
    assert report.files_linked == 0 and report.bytes_linked == 0
    for name in os.listdir(tmp_path / "ckpt"):
        assert not os.path.samefile(tmp_path / "src" / name, tmp_path / "ckpt" / name)
    assert read_all(tmp_path / "ckpt") == expected


class CrossDevice(MemoryFileSystem):
    """A file system on which every hard link fails as across two devices."""

    def link(self, src: str, dst: str) -> None:
        raise OSError(errno.EXDEV, "Invalid cross-device link", dst)


def test_another_file_system_gets_copies(tmp_path: Path) -> None:
    fs = CrossDevice()
    with Engine.open("/src", fs=fs, segment_size=4096, auto_compact=False) as db:
        expected = fill(db, 300)
        report = db.checkpoint("/elsewhere/ckpt")
    assert report.files_linked == 0 and report.files_copied >= 3
    assert read_all("/elsewhere/ckpt", fs=fs) == expected


def test_reuse_links_an_identical_file_instead_of_copying() -> None:
    fs = CrossDevice()
    asked = []

    def reuse(src: str, name: str, size: int) -> str | None:
        asked.append(name)
        return None

    with Engine.open("/src", fs=fs, segment_size=4096, auto_compact=False) as db:
        fill(db, 300)
        sealed = len(db.stats()["segments"]) - 1
        db.checkpoint("/ckpt", reuse=reuse)
    assert len(asked) == sealed  # asked for every sealed segment, never the active one


@pytest.mark.parametrize("existing", ["a file", "a non-empty directory"])
def test_dest_must_be_new_and_is_left_alone(tmp_path: Path, existing: str) -> None:
    dest = tmp_path / "dest"
    if existing == "a file":
        dest.write_text("mine")
    else:
        dest.mkdir()
        (dest / "mine").write_text("mine")
    with Engine.open(tmp_path / "src") as db:
        db.put(b"k", b"v")
        with pytest.raises(ValueError, match="dest"):
            db.checkpoint(dest)
    assert (dest.read_text() if dest.is_file() else (dest / "mine").read_text()) == "mine"


def test_an_empty_existing_directory_is_fine(tmp_path: Path) -> None:
    (tmp_path / "dest").mkdir()
    with Engine.open(tmp_path / "src") as db:
        db.put(b"k", b"v")
        db.checkpoint(tmp_path / "dest")
    assert read_all(tmp_path / "dest") == {b"k": b"v"}


def test_a_dest_that_is_not_a_path_is_refused(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src") as db:
        for bad in (b"/tmp/bytes-path", 42, None):
            with pytest.raises(TypeError, match="dest"):
                db.checkpoint(bad)  # type: ignore[arg-type]
    assert os.listdir(tmp_path) == ["src"]


def test_a_closed_store_refuses(tmp_path: Path) -> None:
    db = Engine.open(tmp_path / "src")
    db.close()
    with pytest.raises(ClosedError):
        db.checkpoint(tmp_path / "ckpt")
    assert not (tmp_path / "ckpt").exists()


def test_dest_inside_the_store_is_refused(tmp_path: Path) -> None:
    with Engine.open(tmp_path / "src") as db:
        for inside in (tmp_path / "src", tmp_path / "src" / "copy"):
            with pytest.raises(ValueError, match="inside the store"):
                db.checkpoint(inside)
        db.checkpoint(tmp_path / "src-copy")  # a sibling whose name starts alike is fine
    assert sorted(os.listdir(tmp_path)) == ["src", "src-copy"]


def test_a_checkpoint_cut_short_is_marked_and_refused_by_open() -> None:
    fs = MemoryFileSystem()
    with Engine.open("/src", fs=fs, segment_size=4096, auto_compact=False) as db:
        fill(db, 300)
        db.checkpoint("/probe")  # makes the log durable: the next checkpoints have no fsync
        ops = len(fs.journal)
        db.checkpoint("/probe2")
        steps = len(fs.journal) - ops
        for stop in range(3, steps - 1):  # after the marker is durable, before it goes
            fs.hook = failing_at(stop)
            with pytest.raises(StorageError, match=r"injected.*left marked incomplete"):
                db.checkpoint(f"/ckpt{stop}")
            fs.hook = None
            assert MARKER in fs.listdir(f"/ckpt{stop}")
            with pytest.raises(IncompleteCheckpointError, match=MARKER):
                Engine.open(f"/ckpt{stop}", fs=fs)


def compacted(db: Engine) -> bool:
    return bool(db.stats()["compaction"]["count"])


def failing_at(stop: int) -> Callable[[Op], None]:
    """A file-system hook that fails the ``stop``-th next operation (counting from 0)."""
    calls = iter(range(stop, -1, -1))

    def fail(op: Op) -> None:
        if next(calls, -1) == 0:
            raise OSError(errno.EIO, "injected", str(op[1]))

    return fail


def test_concurrent_writers_each_see_a_prefix_of_their_writes(tmp_path: Path) -> None:
    """8 writers and compaction go on; every checkpoint holds a prefix of each writer's puts."""
    db = Engine.open(
        tmp_path / "src", segment_size=16 << 10, compact_min_bytes=0, compact_interval=0.01
    )
    taken = []
    try:
        with Writers(db) as writers:
            # Ten checkpoints, and on until a compaction has run (a loaded machine is slow).
            cap = time.monotonic() + 120
            while len(taken) < 10 or (not compacted(db) and time.monotonic() < cap):
                before = writers.snapshot()
                db.checkpoint(tmp_path / f"ckpt{len(taken)}")
                taken.append((before, writers.snapshot()))
        compactions = db.stats()["compaction"]["count"]
    finally:
        db.close()
    assert compactions > 0
    for n, (before, after) in enumerate(taken):
        assert not prefix_problems(read_all(tmp_path / f"ckpt{n}"), before, after), n
