"""Atomic batches: several puts and deletes that land together or not at all.

A batch collects validated operations in memory; committing writes them as one
append that ends in a commit marker, so recovery applies a batch only if the
marker made it to disk. ``with db.batch() as b:`` commits on a clean exit and
discards everything if the block raises.
"""

from __future__ import annotations

from types import TracebackType
from typing import TYPE_CHECKING

from engine.format import NO_EXPIRY

if TYPE_CHECKING:
    from engine.engine import Engine


class Batch:
    """Puts and deletes applied in order, all or nothing, on ``commit``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._max_key_size = engine.options.max_key_size
        self._max_value_size = engine.options.max_value_size
        self._ops: list[tuple[bytes, bytes | None, float]] = []
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
            key, value = self._engine._checked(key, value)
        if ttl is None and expires_at is None:
            self._ops.append((key, value, NO_EXPIRY))
        else:
            self._ops.append((key, value, self._engine._expiry_of(ttl, expires_at)))

    def delete(self, key: bytes) -> None:
        """Queue a delete."""
        self._check_open()
        self._ops.append((self._engine._check_key(key), None, NO_EXPIRY))

    def __len__(self) -> int:
        return len(self._ops)

    def commit(self) -> None:
        """Apply every queued operation at once; a batch commits at most once."""
        self._check_open()
        self._done = True
        self._engine._commit_batch(self._ops)

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
