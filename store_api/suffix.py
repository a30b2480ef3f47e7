"""An in-memory index of one table's keys by their reversed text, for suffix queries.

Keys ending with ``s`` are exactly the keys whose reversal starts with the
reversal of ``s``, so a suffix query is a range scan of a sorted set of reversed
keys: ``O(log n + matches)`` instead of a pass over the whole table.

The index is a cache, never the truth: it may hold keys that have since been
deleted or have expired (the store checks every candidate against the engine
and calls ``discard`` for the dead ones), but it never misses a key whose write
has returned. Writers only add the key to the ``pending`` set (atomic under the
GIL: no lock, no sorting, and rewriting a key adds nothing); the next query,
or the writer that takes ``pending`` past ``PENDING_LIMIT``, sorts them in.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sortedcontainers import SortedSet

#: Writers fold pending keys in themselves beyond this many (bounds memory without queries).
PENDING_LIMIT = 1 << 18


class SuffixIndex:
    """The keys of one table, sorted by their reversed text, plus keys written since."""

    def __init__(self) -> None:
        self._reversed = SortedSet()
        self._lock = threading.Lock()
        self.pending: set[str] = set()

    def __len__(self) -> int:
        self.settle()
        return len(self._reversed)

    def note(self, key: str) -> None:
        """Record that ``key`` was written (cheap: sorted in by the next query)."""
        pending = self.pending
        pending.add(key)
        if len(pending) > PENDING_LIMIT:
            self.settle()

    def load(self, keys: Iterable[str]) -> None:
        """Add many keys at once: one sort rather than one insertion each."""
        with self._lock:
            self._reversed.update([key[::-1] for key in keys])

    def settle(self) -> None:
        """Sort the pending keys into the index."""
        with self._lock:
            pending = self.pending
            if pending:
                # copy() and difference_update() are each atomic (str hashes are cached, so
                # no Python code runs inside them): a key added in between stays pending.
                batch = pending.copy()
                pending.difference_update(batch)
                self._reversed.update([key[::-1] for key in batch])

    def discard(self, key: str) -> None:
        """Forget ``key`` (dead in the engine); a later write of it is noted again."""
        with self._lock:
            self._reversed.discard(key[::-1])

    def matching(self, suffix: str) -> list[str]:
        """Every remembered key that ends with ``suffix``, ascending by key."""
        self.settle()
        head = suffix[::-1]
        found: list[str] = []
        with self._lock:
            for reversed_key in self._reversed.irange(minimum=head):
                if not reversed_key.startswith(head):
                    break
                found.append(reversed_key[::-1])
        found.sort()
        return found
