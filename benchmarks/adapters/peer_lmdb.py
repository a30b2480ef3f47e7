"""lmdb (py-lmdb): a B+tree in a memory map, a write transaction per write.

* always: ``sync=True`` fsyncs at every commit.
* periodic: ``sync=False`` hands each commit to the OS without fsync; the harness
  calls ``env.sync(True)`` every sync_interval.
* none: one write transaction is kept open (reads go through it) and committed by
  :meth:`sync`, so writes sit in the process until then. A py-lmdb write
  transaction belongs to one thread, so in this mode the adapter is not
  thread-safe and the harness serializes calls with one lock.
"""

from __future__ import annotations

import os
from itertools import islice
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode

#: Address space reserved for the map; sparse, so it costs no disk.
MAP_SIZE = 1 << 36


class LmdbAdapter(Adapter):
    name = "lmdb"
    module = "lmdb"
    threadsafe = True

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.MATCH, "sync=True, a transaction per write")
        if sync == "periodic":
            return Durability(
                Level.MATCH, "sync=False, a transaction per write, env.sync() every interval"
            )
        return Durability(Level.MATCH, "one open write transaction committed by sync()")

    def open(self) -> None:
        import lmdb

        os.makedirs(self.path, exist_ok=True)
        env = lmdb.open(
            self.path, map_size=MAP_SIZE, sync=self.sync_mode == "always", max_spare_txns=4
        )
        self._env = env
        self._txn: Any = None
        if self.sync_mode == "none":
            self.threadsafe = False
            self._txn = env.begin(write=True)
            txn_holder = self

            def put(key: bytes, value: bytes) -> object:
                return txn_holder._txn.put(key, value)

            def get(key: bytes) -> bytes | None:
                value: bytes | None = txn_holder._txn.get(key)
                return value

            def delete(key: bytes) -> object:
                return txn_holder._txn.delete(key)

        else:
            begin = env.begin

            def put(key: bytes, value: bytes) -> object:
                with begin(write=True) as txn:
                    return txn.put(key, value)

            def get(key: bytes) -> bytes | None:
                with begin() as txn:
                    value: bytes | None = txn.get(key)
                    return value

            def delete(key: bytes) -> object:
                with begin(write=True) as txn:
                    return txn.delete(key)

        self.put, self.get, self.delete = put, get, delete

    def sync(self) -> None:
        if self._txn is not None:
            self._txn.commit()
            self._txn = self._env.begin(write=True)
        self._env.sync(True)

    def scan_prefix(self, prefix: bytes) -> int:
        count = 0
        txn = self._txn if self._txn is not None else self._env.begin()
        try:
            cursor = txn.cursor()
            if not cursor.set_range(prefix):
                return 0
            for key, _value in cursor:
                if not key.startswith(prefix):
                    break
                count += 1
        finally:
            if self._txn is None:
                txn.abort()
        return count

    def scan(self, start: bytes, count: int) -> int:
        txn = self._txn if self._txn is not None else self._env.begin()
        try:
            cursor = txn.cursor()
            if not cursor.set_range(start):
                return 0
            return sum(1 for _ in islice(cursor, count))
        finally:
            if self._txn is None:
                txn.abort()

    def close(self) -> None:
        if self._txn is not None:
            self._txn.commit()
            self._txn = None
        self._env.sync(True)
        self._env.close()
