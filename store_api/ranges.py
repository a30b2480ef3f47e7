"""Range reads of one namespace over an engine: prefix and suffix queries, lazily, in key order.

``LogStore`` checks the arguments and paginates; this module turns a
namespace, a prefix and a suffix into the live records or keys that match.
Prefixes are range scans of the engine's sorted index. Suffixes go through
``TableSuffixes``, one in-memory ``SuffixIndex`` per table that has been
queried by suffix, whose candidates are checked against the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from typing import Final

from engine import Engine
from engine.follower import Follower
from store_api import codec
from store_api.keys import (
    ESCAPED_NUL,
    NUL,
    TERMINATOR_SIZE,
    decode_keys,
    encode_key,
    key_prefix,
    to_bytes,
)
from store_api.record import Record
from store_api.suffix import SuffixIndex

#: The longest remaining lifetime a ``timedelta`` can hold, in seconds.
_LONGEST: Final = timedelta.max.total_seconds()


def decode_record(key: str, data: bytes, now: float) -> Record | None:
    """The record stored as ``data``, or None if it has expired by ``now``."""
    value, metadata, expires_at = codec.decode(data)
    if expires_at is None:
        return Record(key, value, metadata)
    if expires_at <= now:
        return None
    remaining = expires_at - now
    if remaining >= _LONGEST - 1:
        # A lifetime past what a timedelta holds (a ttl of 1e300 s is accepted): the longest.
        return Record(key, value, metadata, timedelta.max)
    micros = round(remaining * 1_000_000)
    return Record(key, value, metadata, timedelta(microseconds=max(micros, 1)))


def prefix_records(
    db: Engine, space: str, prefix: str, now: float, limit: int | None = None
) -> Iterator[Record]:
    """Live records of ``space`` whose key starts with ``prefix``, ascending (the first
    ``limit`` of them, if given: the engine then reads no further)."""
    size = len(to_bytes(space))
    for engine_key, data in db.scan(prefix=key_prefix(space, prefix), limit=limit):
        # The inverse of keys.encode_key, inlined: a call per record was a tenth of its cost.
        key = engine_key[size:-TERMINATOR_SIZE].decode("utf-8", "surrogatepass")
        if NUL in key:
            key = key.replace(ESCAPED_NUL, NUL)
        record = Record(key, data[1:]) if not data[0] else decode_record(key, data, now)
        if record is not None:
            yield record


def prefix_keys(db: Engine, space: str, prefix: str, limit: int | None = None) -> list[str]:
    """Live keys of ``space`` starting with ``prefix``, ascending (the first ``limit``)."""
    return decode_keys(space, db.scan_keys(prefix=key_prefix(space, prefix), limit=limit))


class TableSuffixes:
    """The suffix index of every table queried by suffix since the engine was opened.

    ``by_space`` is replaced, never changed in place, when a table's index is
    added, so writers read it without a lock (``LogStore.write`` notes each
    key written to a table that has an index).
    """

    def __init__(self) -> None:
        self.by_space: dict[str, SuffixIndex] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        """Forget every index (the engine was closed: the next query rebuilds from disk)."""
        with self._lock:
            self.by_space = {}

    def records(
        self, db: Engine, space: str, prefix: str, suffix: str, now: float
    ) -> Iterator[Record]:
        """Live records of ``space`` ending with ``suffix`` (and starting with ``prefix``)."""
        index, candidates = self._candidates(db, space, prefix, suffix)
        for key in candidates:
            data = db.get(encode_key(space, key))
            record = None if data is None else decode_record(key, data, now)
            if record is None:
                index.discard(key)
            else:
                yield record

    def keys(self, db: Engine, space: str, prefix: str, suffix: str) -> Iterator[str]:
        """Live keys of ``space`` ending with ``suffix`` (and starting with ``prefix``)."""
        index, candidates = self._candidates(db, space, prefix, suffix)
        for key in candidates:
            if encode_key(space, key) in db:
                yield key
            else:
                index.discard(key)

    def _candidates(
        self, db: Engine, space: str, prefix: str, suffix: str
    ) -> tuple[SuffixIndex, list[str]]:
        """The table's suffix index and the keys in it that may match, ascending.

        Builds the index on first use. It is registered before the key scan
        starts and writers note keys after their put, so a concurrent write
        lands in the scan's snapshot, in the index's pending keys, or both.
        A store other processes write (``readonly`` or ``shared``) gets a fresh
        index per query: their writes never pass through ``note``.
        """
        index = self.by_space.get(space)
        if isinstance(db, Follower):
            index = SuffixIndex()
            index.load(prefix_keys(db, space, ""))
        elif index is None:
            with self._lock:
                index = self.by_space.get(space)
                if index is None:
                    index = SuffixIndex()
                    self.by_space = {**self.by_space, space: index}
                    index.load(prefix_keys(db, space, ""))
        return index, self._matching(index, prefix, suffix)

    @staticmethod
    def _matching(index: SuffixIndex, prefix: str, suffix: str) -> list[str]:
        found = index.matching(suffix)
        if prefix:
            found = [key for key in found if key.startswith(prefix)]
        return found
