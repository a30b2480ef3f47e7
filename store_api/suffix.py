"""An in-memory index of one table's keys by their reversed text, for suffix queries.

Keys ending with ``s`` are exactly the keys whose reversal starts with the
reversal of ``s``, so a suffix query is a range scan of a sorted set of reversed
keys: ``O(log n + matches)`` instead of a pass over the whole table.

The index is a cache, never the truth: it may hold keys that have since expired
(the store checks every candidate against the engine and prunes the dead ones),
but it must never miss a live key. ``LogStore`` builds one per table on that
table's first suffix query and keeps it current on write and delete.
"""

from __future__ import annotations

from collections.abc import Iterable

from sortedcontainers import SortedSet


class SuffixIndex:
    """The keys of one table, sorted by their reversed text."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._reversed = SortedSet(key[::-1] for key in keys)

    def __len__(self) -> int:
        return len(self._reversed)

    def add(self, key: str) -> None:
        """Remember ``key``; adding it twice is harmless."""
        self._reversed.add(key[::-1])

    def discard(self, key: str) -> None:
        """Forget ``key`` if present."""
        self._reversed.discard(key[::-1])

    def matching(self, suffix: str) -> list[str]:
        """Every remembered key that ends with ``suffix``, ascending by key."""
        head = suffix[::-1]
        found: list[str] = []
        for reversed_key in self._reversed.irange(minimum=head):
            if not reversed_key.startswith(head):
                break
            found.append(reversed_key[::-1])
        found.sort()
        return found
