"""Locks between processes: ``flock`` on a file in the store directory.

The kernel releases an ``flock`` when the process holding it dies, however it
dies, so a killed process never leaves a store locked. ``FileLock`` is
``OSFileSystem``'s ``ProcessLock`` (``engine.fs``). A shared store
(``engine.shared``) uses three: ``LOCK`` held shared by every shared opener
(an exclusive owner holds it exclusively, so the two modes exclude each
other), ``APPEND`` held for one append, and ``COMPACT`` held for one
compaction.
"""

from __future__ import annotations

import errno
import fcntl
import os

from engine.errors import LockedError

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)


class FileLock:
    """An open lock file, taken and given back many times: ``with lock: ...`` waits for it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)

    def hold_shared(self) -> None:
        """Hold the file shared for as long as the store is open; LockedError if an owner has it."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:
                raise LockedError(os.path.dirname(self.path) or self.path) from None
            raise

    def __enter__(self) -> FileLock:
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def try_acquire(self) -> bool:
        """Take the lock if nobody holds it; False at once otherwise."""
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in _BUSY:
                return False
            raise
        return True

    def try_upgrade(self) -> bool:
        """Make a shared hold exclusive if nobody else holds the file; False at once otherwise.

        Only for letting go: ``flock`` drops the shared hold before it tries,
        so a False may leave the file not held at all.
        """
        return self.try_acquire()

    def release(self) -> None:
        """Give back a lock taken with ``try_acquire``."""
        fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the file, which gives back any hold; closing twice is harmless."""
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
