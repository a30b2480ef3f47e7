"""diskcache: a dict-like cache on SQLite (values this small live in the database).

* always: ``sqlite_synchronous=2`` (FULL) fsyncs the WAL at each write's commit.
* periodic: the default, ``sqlite_synchronous=1`` (NORMAL) in WAL mode: each write
  is committed to the OS, fsync at checkpoints; the harness checkpoints every
  sync_interval through a second connection.
* none: ``sqlite_synchronous=0`` (OFF) still commits each write to the OS, so it
  is stronger than asked; diskcache has no in-process buffer.

Keys are kept in no order that a range query can use, so there is no prefix scan.
"""

from __future__ import annotations

import os
import sqlite3

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode

_SYNCHRONOUS: dict[SyncMode, int] = {"always": 2, "periodic": 1, "none": 0}


class DiskcacheAdapter(Adapter):
    name = "diskcache"
    module = "diskcache"
    ordered = False
    threadsafe = True

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.MATCH, "sqlite_synchronous=2 (FULL)")
        if sync == "periodic":
            return Durability(
                Level.MATCH, "sqlite_synchronous=1 (NORMAL, default), checkpoint every interval"
            )
        return Durability(Level.STRONGER, "sqlite_synchronous=0: each write still commits")

    def open(self) -> None:
        from diskcache import Cache

        self._cache = cache = Cache(
            self.path,
            sqlite_synchronous=_SYNCHRONOUS[self.sync_mode],
            size_limit=1 << 40,
            eviction_policy="none",
        )
        self._side: sqlite3.Connection | None = None
        self.put, self.get, self.delete = cache.set, cache.get, cache.delete

    def sync(self) -> None:
        if self._side is None:
            self._side = sqlite3.connect(os.path.join(self.path, "cache.db"))
        self._side.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def close(self) -> None:
        if self._side is not None:
            self._side.close()
        self._cache.close()
