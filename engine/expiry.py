"""Expiry times of live keys, and the order in which they run out.

``times`` maps each expiring key to its absolute expiry (keys that never
expire are absent, so the table is empty and free for stores without TTLs).
A heap orders the same times so that expired keys can be dropped from the
index without looking at every key; stale heap entries (the key was rewritten
or deleted since) are skipped and the heap is rebuilt when they pile up.
"""

from __future__ import annotations

import heapq


class ExpiryTable:
    """Absolute expiry times by key, with the soonest-first order."""

    def __init__(self, times: dict[bytes, float] | None = None) -> None:
        self.times: dict[bytes, float] = times if times is not None else {}
        self._heap = [(t, k) for k, t in self.times.items()]
        heapq.heapify(self._heap)

    def __len__(self) -> int:
        return len(self.times)

    def set(self, key: bytes, expires_at: float) -> None:
        """``key`` now expires at ``expires_at``."""
        self.times[key] = expires_at
        heapq.heappush(self._heap, (expires_at, key))

    def discard(self, key: bytes) -> None:
        """``key`` no longer expires (it was rewritten without expiry, or removed)."""
        self.times.pop(key, None)

    def is_expired(self, key: bytes, now: float) -> bool:
        """Whether ``key`` has an expiry at or before ``now``."""
        expires = self.times.get(key)
        return expires is not None and expires <= now

    def pop_expired(self, now: float) -> list[bytes]:
        """Remove and return the keys whose expiry is at or before ``now``."""
        heap = self._heap
        expired = []
        while heap and heap[0][0] <= now:
            expires, key = heapq.heappop(heap)
            if self.times.get(key) == expires:
                del self.times[key]
                expired.append(key)
        if len(heap) > 2 * len(self.times) + 1024:
            self._heap = [(t, k) for k, t in self.times.items()]
            heapq.heapify(self._heap)
        return expired
