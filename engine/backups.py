"""Numbered backups of a store in one directory, sharing the files they have in common.

::

    BACKUP_DIR/
      LOCK                  flock'ed while a backup is added or pruned
      0000000001/           backup 1: a checkpoint of the store (see engine.checkpoint)
      0000000001.json       its listing: every file's size and CRC32C, written last
      0000000002/ ...

A backup is complete once its listing exists; a directory without one is a
backup cut short (by a crash or an error) and is never restored, and the
next prune removes it. Sealed and compacted segments never change, so a new
backup hard links every file it has in common with the store (same file
system) or with the previous backup (another file system, found by name,
size and CRC): a store that gained one segment costs one segment, plus a copy
of its active segment. Files are shared by hard links, so deleting one backup
(``prune``) never touches another's files. Restoring copies every file (no
link), so nothing done to the restored store can reach a backup.

This module works on the real file system only (it stats and links paths).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from crc32c import crc32c

from engine.checkpoint import CheckpointReport, FileCopier, Progress, SourceFile
from engine.errors import CorruptionError
from engine.fs import OSFileSystem

if TYPE_CHECKING:
    from engine.engine import Engine

LOCK: Final = "LOCK"
LISTING_SUFFIX: Final = ".json"
_FORMAT: Final = "seglog-backup 1"
#: Bytes read at a time to compute a file's CRC.
CRC_CHUNK: Final = 4 << 20


@dataclass(frozen=True)
class Backup:
    """One complete backup: where it is, what it holds, and each file's size and CRC32C."""

    id: int
    path: str
    created: float
    source: str
    #: The checkpoint's sequence number; None for a backup of a closed store's files.
    sequence: int | None
    files: dict[str, tuple[int, int]]

    @property
    def bytes(self) -> int:
        return sum(size for size, _crc in self.files.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": self.path,
            "created": self.created,
            "source": self.source,
            "sequence": self.sequence,
            "files": len(self.files),
            "bytes": self.bytes,
        }


@dataclass
class BackupReport:
    """What adding one backup did: files linked and copied, bytes read to compare, pruned ids."""

    backup: Backup
    files_linked: int = 0
    files_copied: int = 0
    bytes_linked: int = 0
    bytes_copied: int = 0
    #: Bytes read to compute CRCs (of new files, and of files compared with the last backup).
    bytes_read: int = 0
    seconds: float = 0.0
    pruned: list[int] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        document = asdict(self)
        document["backup"] = self.backup.as_dict()
        return document


def backup_name(backup_id: int) -> str:
    return f"{backup_id:010d}"


def file_crc(path: str) -> int:
    """CRC32C of a whole file, read in chunks."""
    value = 0
    with open(path, "rb") as f:
        while chunk := f.read(CRC_CHUNK):
            value = crc32c(chunk, value)
    return value


class BackupSet:
    """The backups in one directory (created on the first backup)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.fs = OSFileSystem()

    # ------------------------------------------------------------- reading

    def ids(self) -> list[int]:
        """Every backup directory's id, complete or not, ascending."""
        if not os.path.isdir(self.path):
            return []
        return sorted(int(n) for n in os.listdir(self.path) if n.isdigit() and len(n) == 10)

    def backups(self) -> list[Backup]:
        """The complete backups, oldest first."""
        return [self.get(i) for i in self.ids() if os.path.exists(self._listing(i))]

    def incomplete(self) -> list[int]:
        """Ids of backups that were cut short (no listing): never restored, pruned next."""
        return [i for i in self.ids() if not os.path.exists(self._listing(i))]

    def get(self, backup_id: int) -> Backup:
        """Backup ``backup_id``: ValueError if there is none, CorruptionError if unreadable."""
        listing = self._listing(backup_id)
        if not os.path.exists(listing):
            raise ValueError(f"{self.path}: no complete backup {backup_id}")
        try:
            with open(listing, "rb") as f:
                body = json.load(f)
            if body.get("format") != _FORMAT:
                raise ValueError("not a seglog backup listing")
            files = {
                str(name): (int(entry["bytes"]), int(entry["crc32c"]))
                for name, entry in body["files"].items()
            }
            sequence = body["sequence"]
            return Backup(
                backup_id,
                os.path.join(self.path, backup_name(backup_id)),
                float(body["created"]),
                str(body["source"]),
                None if sequence is None else int(sequence),
                files,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptionError(f"{listing}: {exc}") from exc

    def latest(self) -> Backup | None:
        found = self.backups()
        return found[-1] if found else None

    def check(self, backup: Backup) -> list[str]:
        """Files of ``backup`` missing, extra, or not the size and CRC its listing says."""
        problems = []
        present = set(os.listdir(backup.path)) if os.path.isdir(backup.path) else set()
        for name, (size, crc) in sorted(backup.files.items()):
            path = os.path.join(backup.path, name)
            if name not in present:
                problems.append(f"{name}: missing")
            elif os.path.getsize(path) != size:
                problems.append(f"{name}: {os.path.getsize(path)} bytes, the listing says {size}")
            elif file_crc(path) != crc:
                problems.append(f"{name}: CRC32C mismatch")
        problems += [f"{name}: not in the listing" for name in sorted(present - set(backup.files))]
        return problems

    # ------------------------------------------------------------- writing

    def back_up(self, engine: Engine, *, progress: Progress | None = None) -> BackupReport:
        """Add a backup of the open store ``engine`` (a checkpoint; writes go on meanwhile)."""
        started = time.perf_counter()
        with self._locked():
            backup_id, previous = self._next()
            dest = os.path.join(self.path, backup_name(backup_id))
            report = BackupReport(Backup(backup_id, dest, time.time(), engine.path, None, {}))
            reuse = _Reuser(previous, report)
            checkpoint = engine.checkpoint(dest, reuse=reuse, progress=progress)
            return self._finish(report, checkpoint.sequence, checkpoint, previous, started)

    def back_up_files(
        self, directory: str, files: Iterable[SourceFile], *, progress: Progress | None = None
    ) -> BackupReport:
        """Add a backup of the files of a store no process has open (the caller holds its lock)."""
        started = time.perf_counter()
        with self._locked():
            backup_id, previous = self._next()
            dest = os.path.join(self.path, backup_name(backup_id))
            source = os.path.abspath(directory)
            report = BackupReport(Backup(backup_id, dest, time.time(), source, None, {}))
            copier = FileCopier(
                self.fs, source, dest, reuse=_Reuser(previous, report), progress=progress
            )
            copier.begin()
            copier.take(files)
            copier.finish()
            return self._finish(report, None, copier.report(0, 0.0), previous, started)

    def _finish(
        self,
        report: BackupReport,
        sequence: int | None,
        took: CheckpointReport,
        previous: Backup | None,
        started: float,
    ) -> BackupReport:
        """Compute the new backup's CRCs (reusing the previous one's for shared files); list it."""
        dest = report.backup.path
        files = {}
        for name in sorted(os.listdir(dest)):
            path = os.path.join(dest, name)
            known = _shared(previous, name, path)
            if known is not None:
                files[name] = known
            else:
                files[name] = (os.path.getsize(path), file_crc(path))
                report.bytes_read += files[name][0]
        backup = Backup(
            report.backup.id, dest, report.backup.created, report.backup.source, sequence, files
        )
        self._write_listing(backup)
        report.backup = backup
        report.files_linked, report.files_copied = took.files_linked, took.files_copied
        report.bytes_linked, report.bytes_copied = took.bytes_linked, took.bytes_copied
        report.seconds = time.perf_counter() - started
        return report

    def _write_listing(self, backup: Backup) -> None:
        body = {
            "format": _FORMAT,
            "created": backup.created,
            "source": backup.source,
            "sequence": backup.sequence,
            "files": {n: {"bytes": s, "crc32c": c} for n, (s, c) in backup.files.items()},
        }
        listing = self._listing(backup.id)
        tmp = listing + ".tmp"
        with open(tmp, "w") as f:
            json.dump(body, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, listing)
        self.fs.fsync_dir(self.path)

    def prune(self, keep: int) -> list[int]:
        """Delete all but the newest ``keep`` complete backups, and every incomplete one."""
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise ValueError(f"keep must be a whole number of backups, at least 1, not {keep!r}")
        with self._locked():
            complete = [b.id for b in self.backups()]
            doomed = sorted(complete[:-keep] + self.incomplete())
            for backup_id in doomed:
                listing = self._listing(backup_id)
                if os.path.exists(listing):
                    os.unlink(listing)  # first: from here on it is incomplete, never restored
                    self.fs.fsync_dir(self.path)
                shutil.rmtree(os.path.join(self.path, backup_name(backup_id)))
            if doomed:
                self.fs.fsync_dir(self.path)
            return doomed

    def restore(
        self, backup_id: int | None, dest: str, *, progress: Progress | None = None
    ) -> Backup:
        """Copy backup ``backup_id`` (the newest if None) into the new directory ``dest``.

        Every file is copied, none linked, and checked against the listing's
        CRC before the copy is marked complete: a restored store shares
        nothing with its backup. ``dest`` must be missing or empty.
        """
        if backup_id is None:
            latest = self.latest()
            if latest is None:
                raise ValueError(f"{self.path}: no complete backup to restore")
            backup_id = latest.id
        backup = self.get(backup_id)
        copier = FileCopier(self.fs, backup.path, dest, link=False, progress=progress)
        copier.begin()
        copier.take(SourceFile(n, size, linkable=False) for n, (size, _) in backup.files.items())
        for name, (_size, crc) in backup.files.items():
            if file_crc(os.path.join(dest, name)) != crc:
                raise CorruptionError(
                    f"{backup.path}/{name}: CRC32C mismatch; {dest} is left marked incomplete"
                )
        copier.finish()
        return backup

    # ------------------------------------------------------------- helpers

    def _listing(self, backup_id: int) -> str:
        return os.path.join(self.path, backup_name(backup_id) + LISTING_SUFFIX)

    def _next(self) -> tuple[int, Backup | None]:
        """The new backup's id (after every existing one) and the newest complete backup."""
        ids = self.ids()
        return (ids[-1] + 1 if ids else 1), self.latest()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Create the directory if needed and hold its lock: one writer of backups at a time."""
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise ValueError(f"{self.path}: not a directory")
        self.fs.makedirs(self.path)
        lock = self.fs.lock(os.path.join(self.path, LOCK))
        try:
            yield
        finally:
            lock.release()


def _shared(previous: Backup | None, name: str, path: str) -> tuple[int, int] | None:
    """The previous backup's size and CRC of ``name`` if ``path`` is the very same file."""
    if previous is None or name not in previous.files:
        return None
    older = os.path.join(previous.path, name)
    return previous.files[name] if os.path.exists(older) and os.path.samefile(path, older) else None


class _Reuser:
    """For a file that cannot be linked from the store: the previous backup's identical copy."""

    def __init__(self, previous: Backup | None, report: BackupReport) -> None:
        self.previous = previous
        self.report = report

    def __call__(self, src: str, name: str, size: int) -> str | None:
        if self.previous is None:
            return None
        known = self.previous.files.get(name)
        if known is None or known[0] != size:
            return None
        self.report.bytes_read += size
        if file_crc(src) != known[1]:
            return None
        return os.path.join(self.previous.path, name)
