"""An in-memory index of one table's keys by their reversed text, for suffix queries.

Keys ending with ``s`` are exactly the keys whose reversal starts with the
reversal of ``s``, so a suffix query is a range scan of a sorted set of reversed
keys: ``O(log n + matches)`` instead of a pass over the whole table.

The index is a cache, never the truth: it may hold keys that have since been
deleted or have expired (the store checks every candidate against the engine
and calls ``discard`` for the dead ones), but it never misses a key whose write
has returned. Writers only append to ``pending`` (a list append, atomic under
the GIL, no lock, no sorting); the next query sorts them in. That keeps a write
to a table with a suffix index within a few percent of one without.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

from sortedcontainers import SortedSet

#: Writers fold pending keys in themselves beyond this many (bounds memory without queries).
PENDING_LIMIT = 65_536


class SuffixIndex:
    """The keys of one table, sorted by their reversed text, plus keys written since."""

    def __init__(self) -> None:
        self._reversed = SortedSet()
        self._lock = threading.Lock()
        self.pending: list[str] = []

    def __len__(self) -> int:
        self.settle()
        return len(self._reversed)

    def note(self, key: str) -> None:
        """Record that ``key`` was written (cheap: sorted in by the next query)."""
        pending = self.pending
        pending.append(key)
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
            count = len(pending)
            if count:
                batch = pending[:count]
                # Slice deletion is one atomic operation: keys appended meanwhile stay pending.
                del pending[:count]
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
