"""sqlite3 (standard library): one table, a transaction per write, WAL journal.

* always: ``synchronous=FULL`` in WAL mode fsyncs the WAL at every commit.
* periodic: ``synchronous=NORMAL`` in WAL mode writes the WAL at every commit and
  fsyncs only at checkpoints; the harness checkpoints every sync_interval.
* none: one transaction is kept open and committed by :meth:`sync`, so writes sit
  in sqlite's page cache inside the process until then, as seglog's "none" does.
"""

from __future__ import annotations

import os
import sqlite3

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode, prefix_upper_bound

_SYNCHRONOUS: dict[SyncMode, str] = {"always": "FULL", "periodic": "NORMAL", "none": "FULL"}


class SqliteAdapter(Adapter):
    name = "sqlite"
    module = "sqlite3"

    @classmethod
    def version(cls) -> str:
        return sqlite3.sqlite_version

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.MATCH, "WAL, synchronous=FULL, a transaction per write")
        if sync == "periodic":
            return Durability(
                Level.MATCH,
                "WAL, synchronous=NORMAL, a transaction per write, checkpoint every interval",
            )
        return Durability(Level.MATCH, "WAL, one open transaction committed by sync()")

    def open(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        conn = sqlite3.connect(
            os.path.join(self.path, "kv.sqlite"), isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={_SYNCHRONOUS[self.sync_mode]}")
        conn.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID")
        self._conn = conn
        execute = conn.execute

        def put(key: bytes, value: bytes) -> object:
            return execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))

        def get(key: bytes) -> bytes | None:
            row = execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            return None if row is None else bytes(row[0])

        def delete(key: bytes) -> object:
            return execute("DELETE FROM kv WHERE k = ?", (key,))

        self.put, self.get, self.delete = put, get, delete
        if self.sync_mode == "none":
            conn.execute("BEGIN")

    def sync(self) -> None:
        if self.sync_mode == "none":
            self._conn.execute("COMMIT")
            self._conn.execute("BEGIN")
        else:
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def scan_prefix(self, prefix: bytes) -> int:
        end = prefix_upper_bound(prefix)
        if end is None:
            rows = self._conn.execute("SELECT k, v FROM kv WHERE k >= ? ORDER BY k", (prefix,))
        else:
            rows = self._conn.execute(
                "SELECT k, v FROM kv WHERE k >= ? AND k < ? ORDER BY k", (prefix, end)
            )
        return sum(1 for _ in rows)

    def scan(self, start: bytes, count: int) -> int:
        rows = self._conn.execute(
            "SELECT k, v FROM kv WHERE k >= ? ORDER BY k LIMIT ?", (start, count)
        )
        return sum(1 for _ in rows)

    def close(self) -> None:
        if self.sync_mode == "none":
            self._conn.execute("COMMIT")
        self._conn.close()
