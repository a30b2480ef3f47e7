"""The exceptions the engine raises; every storage failure is a StorageError."""

from __future__ import annotations

import errno
import resource


class StorageError(Exception):
    """A storage operation failed; the engine's data on disk is unchanged or recoverable."""


class CorruptionError(StorageError):
    """Bytes on disk fail their checks (CRC, magic, lengths): never returned as data."""


class LockedError(StorageError):
    """Another process or handle already owns the store directory."""

    def __init__(self, path: str) -> None:
        super().__init__(f"store directory {path!r} is locked by another process or handle")
        self.path = path


class ReadOnlyError(StorageError):
    """A write, compaction or sync on a store opened with ``readonly=True``; nothing was written."""


class FailedError(StorageError):
    """An earlier fsync or write failed; the engine refuses work until it is reopened.

    Retrying after a failed fsync can silently lose data (the "fsyncgate" lesson),
    so the only safe continuation is a fresh open that re-reads what is on disk.
    """


class DiskFullError(StorageError):
    """No room on the disk for a write or a compaction; nothing was written.

    Unlike ``FailedError`` the store goes on: reads work, and writes succeed
    again as soon as space is freed, without reopening.
    """


def opening_failed(directory: str, exc: OSError) -> StorageError:
    """The error for a store that could not be opened: names the path and, for the
    usual causes, what to do about it."""
    message = f"cannot open the store {directory!r}: {exc}"
    if exc.errno in (errno.EMFILE, errno.ENFILE):
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        message += (
            f"; every segment file holds a descriptor and this process may hold {soft} "
            "(raise `ulimit -n`, or use a larger segment_size and compact)"
        )
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        message += "; a store is opened read-write and needs a writable directory"
    return StorageError(message)


def is_disk_full(exc: OSError) -> bool:
    """Whether an OSError says the disk or the user's quota is full."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)


class ClosedError(StorageError):
    """The engine has been closed."""
