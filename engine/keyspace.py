"""The keyspace: which keys the store holds, where their records are, when they expire,
and how many dead bytes each segment carries.

One owner for the index (``engine.index``), the expiry table
(``engine.expiry``) and the dead-byte ledger that compaction chooses by. The
engine's writes, batches and compaction change them only through these
methods, with the segment writer's lock held. ``locations`` and ``times`` are
exposed for reading only: ``get`` reads them without the lock (a dict read is
atomic under the GIL), which is what keeps the read hot path a dict lookup.

``put`` (no expiry) and ``apply_batch`` are hot paths: their bookkeeping is
written out inline rather than through the helpers below.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import islice

from engine.expiry import ExpiryTable
from engine.format import NO_EXPIRY
from engine.index import KeyIndex
from engine.location import SEGMENT_SHIFT, SIZE_BITS, SIZE_MASK

#: A queued batch operation: key, value (None for a delete), absolute expiry.
BatchOp = tuple[bytes, bytes | None, float]


class Keyspace:
    """Keys to locations, their expiry times, and the dead bytes of every segment."""

    def __init__(self) -> None:
        self.restore(KeyIndex(), {}, {})

    def restore(self, index: KeyIndex, expiry: dict[bytes, float], dead: dict[int, int]) -> None:
        """Take over what recovery rebuilt (before the store serves anything)."""
        self._index = index
        #: Key -> packed location (``engine.location``). Read-only outside this class.
        self.locations = index.locations
        self._expiries = ExpiryTable(expiry)
        #: Key -> absolute expiry, for the keys that expire. Read-only outside this class.
        self.times = self._expiries.times
        self._dead = dead

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self.locations)

    def __contains__(self, key: bytes) -> bool:
        return key in self.locations

    @property
    def expiring(self) -> int:
        """How many keys have an expiry."""
        return len(self._expiries)

    def is_expired(self, key: bytes, now: float) -> bool:
        """Whether ``key`` has an expiry at or before ``now``."""
        return self._expiries.is_expired(key, now)

    def entry(self, key: bytes) -> tuple[int | None, float | None]:
        """``key``'s location and expiry (either None if it has none)."""
        return self.locations.get(key), self.times.get(key)

    def live_location(self, key: bytes, now: float) -> int | None:
        """``key``'s location, unless it is missing or has expired by ``now``."""
        location = self.locations.get(key)
        if location is not None and self.times:
            expires = self.times.get(key)
            if expires is not None and expires <= now:
                return None
        return location

    def snapshot(
        self,
        low: bytes | None,
        high: bytes | None,
        prefix: bytes,
        reverse: bool,
        now: float,
        limit: int | None = None,
    ) -> tuple[list[bytes], list[int]]:
        """The first ``limit`` (or all) live keys in ``[low, high)`` under ``prefix``, in
        order, and their locations; the index is read only as far as needed.

        Two lists rather than pairs: with no expiring keys the keys are one slice
        of the sorted index and their locations one C-level ``map`` over the
        dict, with no Python step and no tuple per key (DESIGN-NOTES, "Prefix scans and
        random gets").
        """
        times = self.times
        if times:
            keys = self._index.range(low, high, prefix=prefix, reverse=reverse)
            live = (k for k in keys if k not in times or times[k] > now)
            found = list(live if limit is None else islice(live, limit))
        else:
            found = self._index.span(low, high, prefix, reverse, limit)
        return found, list(map(self.locations.__getitem__, found))

    def dead_bytes(self, segment_id: int) -> int:
        """The bytes of records in ``segment_id`` that nothing points at any more."""
        return self._dead.get(segment_id, 0)

    # ------------------------------------------------------------------ writing

    def put(self, key: bytes, location: int) -> None:
        """Point ``key`` at a record that never expires; what it pointed at is dead."""
        locations = self.locations
        old = locations.get(key)
        locations[key] = location
        if old is None:
            self._index.added(key)
        else:
            dead = self._dead
            segment_id = old >> SEGMENT_SHIFT
            dead[segment_id] = dead.get(segment_id, 0) + (old & SIZE_MASK)
            if self.times:
                self._expiries.discard(key)

    def put_expiring(self, key: bytes, location: int, expires: float, now: float) -> None:
        """Point ``key`` at a record expiring at ``expires``; one already past acts as a delete."""
        if expires > now:
            self.mark_dead(self._index.put(key, location))
            self._expiries.set(key, expires)
        else:
            self.mark_dead(self._forget(key))
            self.mark_dead(location)

    def delete(self, key: bytes, tombstone: int) -> None:
        """Forget ``key``; its record and the tombstone at ``tombstone`` are dead.

        ``mark_dead`` written out inline: this is the delete hot path.
        """
        if self.times:
            self._expiries.discard(key)
        old = self._index.remove(key)
        dead = self._dead
        if old is not None:
            segment_id = old >> SEGMENT_SHIFT
            dead[segment_id] = dead.get(segment_id, 0) + (old & SIZE_MASK)
        segment_id = tombstone >> SEGMENT_SHIFT
        dead[segment_id] = dead.get(segment_id, 0) + (tombstone & SIZE_MASK)

    def apply_batch(
        self, ops: Sequence[BatchOp], sizes: Sequence[int], pos: int, now: float
    ) -> None:
        """Apply a batch written from ``pos`` on: a record of ``sizes[i]`` bytes per op.

        The last of ``sizes`` is the commit marker's, which is dead from the
        start. The common case, a put without expiry, is ``put`` written out inline.
        """
        locations = self.locations
        added = self._index.added
        dead = self._dead
        times = self.times
        for (key, value, expires), size in zip(ops, sizes, strict=False):
            location = pos << SIZE_BITS | size
            pos += size
            if value is not None and expires == NO_EXPIRY:
                old = locations.get(key)
                locations[key] = location
                if old is None:
                    added(key)
                else:
                    segment_id = old >> SEGMENT_SHIFT
                    dead[segment_id] = dead.get(segment_id, 0) + (old & SIZE_MASK)
                    if times:
                        self._expiries.discard(key)
            elif value is None:
                self.delete(key, location)
            else:
                self.put_expiring(key, location, expires, now)
        self.mark_dead(pos << SIZE_BITS | sizes[-1])

    def mark_dead(self, location: int | None) -> None:
        """Count the record at ``location`` as reclaimable by compaction."""
        if location is not None:
            segment_id = location >> SEGMENT_SHIFT
            self._dead[segment_id] = self._dead.get(segment_id, 0) + (location & SIZE_MASK)

    def drop_expired(self, now: float) -> None:
        """Remove the keys whose expiry has passed by ``now``; their records are dead."""
        if self.times:
            for key in self._expiries.pop_expired(now):
                self.mark_dead(self._index.remove(key))

    def _forget(self, key: bytes) -> int | None:
        """Drop ``key`` from the index and the expiry table; return its old location."""
        if self.times:
            self._expiries.discard(key)
        return self._index.remove(key)

    # --------------------------------------------------------------- compaction

    def add_segment(self, segment_id: int, dead_bytes: int) -> None:
        """Start the ledger of a new (compacted) segment that holds ``dead_bytes`` already."""
        self._dead[segment_id] = dead_bytes

    def move(self, key: bytes, source: int, location: int) -> bool:
        """Point ``key`` at a copy of its record, only if it is still at ``source``.

        A compare-and-swap: a write that raced the copy wins, and the copy counts
        as dead instead. Returns whether the key moved.
        """
        if self._index.replace_if(key, source, location):
            return True
        self.mark_dead(location)
        return False

    def forget_segment(self, segment_id: int) -> None:
        """Drop the ledger of a segment that compaction retired."""
        self._dead.pop(segment_id, None)
