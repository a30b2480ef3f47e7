"""Atomic batches: several puts and deletes that land together or not at all.

A batch collects validated operations in memory; committing writes them as one
append that ends in a commit marker, so recovery applies a batch only if the
marker made it to disk. ``with db.batch() as b:`` commits on a clean exit and
discards everything if the block raises.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from engine.checks import WriteChecks
from engine.format import NO_EXPIRY
from engine.keyspace import BatchOp


class Batch:
    """Puts and deletes applied in order, all or nothing, on ``commit``.

    Made by ``Engine.batch``: ``checks`` validates each operation as it is
    queued, and ``commit`` writes and applies the queued operations at once.
    """

    def __init__(self, checks: WriteChecks, commit: Callable[[list[BatchOp]], None]) -> None:
        self._checks = checks
        self._commit = commit
        self._max_key_size = checks.max_key_size
        self._max_value_size = checks.max_value_size
        self._ops: list[BatchOp] = []
        self._done = False

    def put(
        self,
        key: bytes,
        value: bytes,
        *,
        ttl: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        """Queue a put (checked now, so a bad one never reaches commit)."""
        if self._done:
            self._check_open()
        if (
            type(key) is not bytes
            or type(value) is not bytes
            or not key
            or len(key) > self._max_key_size
            or len(value) > self._max_value_size
        ):
            key, value = self._checks.checked(key, value)
        if ttl is None and expires_at is None:
            self._ops.append((key, value, NO_EXPIRY))
        else:
            self._ops.append((key, value, self._checks.expiry(ttl, expires_at)))

    def delete(self, key: bytes) -> None:
        """Queue a delete."""
        self._check_open()
        self._ops.append((self._checks.key(key), None, NO_EXPIRY))

    def __len__(self) -> int:
        return len(self._ops)

    def commit(self) -> None:
        """Apply every queued operation at once; a batch commits at most once."""
        self._check_open()
        self._done = True
        self._commit(self._ops)

    def discard(self) -> None:
        """Drop every queued operation."""
        self._done = True
        self._ops.clear()

    def _check_open(self) -> None:
        if self._done:
            raise RuntimeError("this batch was already committed or discarded")

    def __enter__(self) -> Batch:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()
