"""The exceptions the engine raises; every storage failure is a StorageError."""

from __future__ import annotations


class StorageError(Exception):
    """A storage operation failed; the engine's data on disk is unchanged or recoverable."""


class CorruptionError(StorageError):
    """Bytes on disk fail their checks (CRC, magic, lengths): never returned as data."""


class LockedError(StorageError):
    """Another process or handle already owns the store directory."""

    def __init__(self, path: str) -> None:
        super().__init__(f"store directory {path!r} is locked by another process or handle")
        self.path = path


class FailedError(StorageError):
    """An earlier fsync or write failed; the engine refuses work until it is reopened.

    Retrying after a failed fsync can silently lose data (the "fsyncgate" lesson),
    so the only safe continuation is a fresh open that re-reads what is on disk.
    """


class ClosedError(StorageError):
    """The engine has been closed."""
