"""BackupSet: numbered backups of a live store, sharing files, pruned and restored."""

from __future__ import annotations

import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from backup_helpers import Writers, prefix_problems

from engine import Engine
from engine.backups import BackupSet
from engine.checkpoint import MARKER


def restore_and_read(backups: BackupSet, backup_id: int, dest: Path) -> dict[bytes, bytes]:
    backups.restore(backup_id, str(dest))
    with Engine.open(dest, auto_compact=False) as db:
        return dict(db.scan())


def test_backups_every_100ms_under_8_writers_and_compaction_restore_to_prefixes(
    tmp_path: Path,
) -> None:
    """The real run: a few seconds of writes, compactions and backups, then every restore."""
    backups = BackupSet(tmp_path / "backups")
    db = Engine.open(
        tmp_path / "src", segment_size=32 << 10, compact_min_bytes=0, compact_interval=0.05
    )
    taken: dict[int, tuple[list[int], list[int], int]] = {}
    try:
        with Writers(db) as writers:
            # 3 seconds, and on until 5 backups and a compaction (a loaded machine is slow).
            deadline, cap = time.monotonic() + 3.0, time.monotonic() + 120
            while time.monotonic() < cap and (
                time.monotonic() < deadline
                or len(taken) < 5
                or not db.stats()["compaction"]["count"]
            ):
                before = writers.snapshot()
                report = backups.back_up(db)
                taken[report.backup.id] = (before, writers.snapshot(), report.backup.sequence or 0)
                if len(taken) % 10 == 0:
                    backups.prune(8)
                time.sleep(0.1)
        compactions = db.stats()["compaction"]["count"]
    finally:
        db.close()
    assert compactions > 0 and len(taken) >= 5
    kept = backups.backups()
    assert len(kept) >= 5 and not backups.incomplete()
    for backup in kept:
        assert not backups.check(backup), backup.id
        before, after, _sequence = taken[backup.id]
        got = restore_and_read(backups, backup.id, tmp_path / f"restored{backup.id}")
        assert not prefix_problems(got, before, after), backup.id
    sequences = [b.sequence for b in kept]
    assert sequences == sorted(sequences)


def test_an_unchanged_store_costs_only_its_active_segment(tmp_path: Path) -> None:
    backups = BackupSet(tmp_path / "backups")
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        for i in range(400):
            db.put(b"k%04d" % i, b"v" * 40)
        first = backups.back_up(db)
        second = backups.back_up(db)
        active = db.stats()["active_segment"]
    assert first.bytes_read == first.backup.bytes  # every file's CRC, once
    assert second.files_copied == 1 and second.bytes_copied == second.backup.files[active][0]
    assert second.bytes_read == second.bytes_copied  # shared files keep their CRC
    assert first.backup.files == second.backup.files


def cross_device(store: Path) -> Callable[[str, str], None]:
    """``os.link`` as if the store were on another file system than the backups."""
    real = os.link

    def link(src: str, dst: str) -> None:
        if src.startswith(str(store)):
            raise OSError(errno.EXDEV, "Invalid cross-device link", src)
        real(src, dst)

    return link


def test_on_another_file_system_unchanged_files_link_to_the_last_backup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "link", cross_device(tmp_path / "src"))
    backups = BackupSet(tmp_path / "backups")
    with Engine.open(tmp_path / "src", segment_size=4096, auto_compact=False) as db:
        for i in range(400):
            db.put(b"k%04d" % i, b"v" * 40)
        first = backups.back_up(db)
        for i in range(100):
            db.put(b"n%04d" % i, b"w" * 40)
        second = backups.back_up(db)
        expected = dict(db.scan())
    assert first.files_linked == 0  # nothing to share yet: all copied
    old, new = first.backup.files, second.backup.files
    assert second.files_linked == len(old) - 1  # all but the old active segment, now grown
    # Copied: exactly the files that changed (new segments, the grown one, the active one).
    assert second.bytes_copied == sum(size for n, (size, _) in new.items() if new[n] != old.get(n))
    assert restore_and_read(backups, second.backup.id, tmp_path / "r") == expected


def test_a_backup_cut_short_is_never_restored_and_is_pruned(tmp_path: Path) -> None:
    backups = BackupSet(tmp_path / "backups")
    with Engine.open(tmp_path / "src", auto_compact=False) as db:
        db.put(b"k", b"v")
        backups.back_up(db)
        dest = tmp_path / "backups" / "0000000002"
        dest.mkdir()
        (dest / MARKER).touch()
        assert backups.incomplete() == [2]
        assert [b.id for b in backups.backups()] == [1]
        third = backups.back_up(db)
    assert third.backup.id == 3
    assert backups.latest() == third.backup
    with pytest.raises(ValueError, match="no complete backup 2"):
        backups.restore(2, str(tmp_path / "r"))
    assert backups.prune(5) == [2]
    assert [b.id for b in backups.backups()] == [1, 3]


def test_prune_refuses_a_bad_count(tmp_path: Path) -> None:
    for bad in (0, -1, True, 1.5):
        with pytest.raises(ValueError, match="keep"):
            BackupSet(tmp_path / "b").prune(bad)  # type: ignore[arg-type]
