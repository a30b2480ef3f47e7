"""The in-memory index: key -> location, with ordered scans.

Writes must stay near dict speed, so the index is a plain ``dict`` for point
lookups plus a ``SortedList`` of keys that is brought up to date lazily: new
keys wait in ``pending`` (in arrival order) and removed ones in a ``stale`` set
until the next ordered read merges them. Overwrites (the common write) touch
only the dict. A ``SortedDict`` costs about 2.4 times a dict insert on every
put; this costs one insert on a new key and nothing on an overwrite.

The values are packed locations (``engine.location``): one int each, which
costs far less memory than a tuple.
"""

from __future__ import annotations

from collections.abc import Iterator

from sortedcontainers import SortedList


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: no bound)."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])


def bounds(
    low: bytes | None, high: bytes | None, prefix: bytes
) -> tuple[bytes | None, bytes | None]:
    """``[low, high)`` narrowed to the keys that start with ``prefix``."""
    if prefix:
        if low is None or low < prefix:
            low = prefix
        bound = prefix_end(prefix)
        if bound is not None and (high is None or bound < high):
            high = bound
    return low, high


class KeyIndex:
    """Keys to locations; ``dict`` speed for writes, sorted order on demand."""

    def __init__(self) -> None:
        self.locations: dict[bytes, int] = {}
        self._sorted: SortedList = SortedList()
        #: New keys in arrival order (a dict used as an ordered set): keys that arrive
        #: in order, as a sequential load's do, are then sorted in one linear pass.
        self._pending: dict[bytes, None] = {}
        self._stale: set[bytes] = set()
        #: Whether the next ordered read builds the sorted list from ``locations`` afresh
        #: (an index made by ``over``: recovery's keys are sorted once, when first needed).
        self._rebuild = False

    def __len__(self) -> int:
        return len(self.locations)

    def __contains__(self, key: bytes) -> bool:
        return key in self.locations

    def get(self, key: bytes) -> int | None:
        """The location of ``key``, or None."""
        return self.locations.get(key)

    def put(self, key: bytes, location: int) -> int | None:
        """Point ``key`` at ``location``; return the location it replaced, if any."""
        old = self.locations.get(key)
        self.locations[key] = location
        if old is None:
            if key in self._stale:
                self._stale.discard(key)
            else:
                self._pending[key] = None
        return old

    @classmethod
    def over(cls, locations: dict[bytes, int]) -> KeyIndex:
        """An index that takes ``locations`` as it is (recovery's result); sorted at first use."""
        index = cls()
        index.locations = locations
        index._rebuild = bool(locations)
        return index

    def added(self, key: bytes) -> None:
        """Note that ``key``, just set in ``locations`` by the caller, is new to the index."""
        if key in self._stale:
            self._stale.discard(key)
        else:
            self._pending[key] = None

    def remove(self, key: bytes) -> int | None:
        """Forget ``key``; return its old location, if any."""
        old = self.locations.pop(key, None)
        if old is not None:
            if key in self._pending:
                del self._pending[key]
            else:
                self._stale.add(key)
        return old

    def replace_if(self, key: bytes, expected: int, location: int) -> bool:
        """Compare-and-swap: point ``key`` at ``location`` only if it is at ``expected``."""
        if self.locations.get(key) != expected:
            return False
        self.locations[key] = location
        return True

    def _settle(self) -> None:
        """Bring the sorted list up to date: rebuilt if asked, else pending and stale merged in."""
        if self._rebuild:
            self._sorted = SortedList(self.locations)
            self._pending.clear()
            self._stale.clear()
            self._rebuild = False
            return
        if self._stale:
            if len(self._stale) * 8 > len(self._sorted):
                self._sorted = SortedList(k for k in self._sorted if k not in self._stale)
            else:
                for key in self._stale:
                    self._sorted.remove(key)
            self._stale.clear()
        if self._pending:
            self._sorted.update(self._pending)
            self._pending.clear()

    def range(
        self,
        start: bytes | None = None,
        end: bytes | None = None,
        *,
        prefix: bytes = b"",
        reverse: bool = False,
    ) -> Iterator[bytes]:
        """Keys in ``[start, end)`` that start with ``prefix``, ascending unless ``reverse``.

        The iterator reads the live sorted list: callers that need a stable view
        while the index changes must materialise it (the engine does, under its lock).
        """
        self._settle()
        low, high = bounds(start, end, prefix)
        if low is not None and high is not None and low >= high:
            return iter(())
        keys: Iterator[bytes] = self._sorted.irange(
            low, high, inclusive=(True, False), reverse=reverse
        )
        return keys

    def span(
        self,
        low: bytes | None,
        high: bytes | None,
        prefix: bytes,
        reverse: bool,
        limit: int | None,
    ) -> list[bytes]:
        """The keys ``range`` would yield, the first ``limit`` of them (or all), as a list.

        Scans take their snapshot here: two bisections and one slice of the
        sorted list, less than ``range``'s lazy ``irange`` costs to set up and
        walk (DESIGN-NOTES, "Prefix scans and random gets").
        """
        self._settle()
        low, high = bounds(low, high, prefix)
        ordered = self._sorted
        first = 0 if low is None else ordered.bisect_left(low)
        stop = len(ordered) if high is None else ordered.bisect_left(high)
        if limit is not None and stop - first > limit:
            if reverse:
                first = stop - limit
            else:
                stop = first + limit
        if first >= stop:
            return []
        keys: list[bytes] = ordered[first:stop]
        if reverse:
            keys.reverse()
        return keys

    def keys(self) -> Iterator[bytes]:
        """Every key, in no particular order."""
        return iter(self.locations)
