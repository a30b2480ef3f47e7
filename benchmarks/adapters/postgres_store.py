"""seglog's ``store_api.PostgresStore``: the same Store interface on a PostgreSQL server.

The server is the one ``$SEGLOG_BENCH_POSTGRES`` names (inherited by the worker
processes as ``$SEGLOG_BENCH_POSTGRES``), else a throwaway server on loopback
that this adapter starts once per worker process (``store_api.postgres.server``)
and stops when the process ends. Each store directory the harness asks for
becomes a SQL schema of its own, named after the path, so runs never share
tables. Every write is a committed transaction (``synchronous_commit=on``), so
each mode runs PostgreSQL's durable commit. Disk size is not measured (the
data lives in the server, not in the directory).
"""

from __future__ import annotations

import atexit
import hashlib
import os
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode
from benchmarks.adapters.seglog_engine import seglog_version

#: The DSN of an existing server; unset: start one per worker process.
DSN_VARIABLE = "SEGLOG_BENCH_POSTGRES"

_server_dsn: str | None = None


def server_dsn() -> str:
    """``$SEGLOG_BENCH_POSTGRES``, else the DSN of this process's throwaway server."""
    global _server_dsn
    given = os.environ.get(DSN_VARIABLE)
    if given:
        return given
    if _server_dsn is None:
        from store_api.postgres.server import TemporaryServer

        server = TemporaryServer().init().start()
        atexit.register(server.close)
        _server_dsn = server.create_database("bench")
    return _server_dsn


class PostgresStoreAdapter(Adapter):
    name = "postgres-store"
    module = "psycopg"
    threadsafe = True
    self_syncing = True
    local_files = False

    @classmethod
    def missing(cls) -> str | None:
        reason = super().missing()
        if reason is not None or os.environ.get(DSN_VARIABLE):
            return reason
        from store_api.postgres.server import ServerUnavailable, find_bindir

        try:
            find_bindir()
        except ServerUnavailable as exc:
            return f"no server: {exc}"
        return None

    @classmethod
    def version(cls) -> str:
        import psycopg

        return f"{seglog_version()} (psycopg {psycopg.__version__})"

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        how = "PostgresStore: autocommit, synchronous_commit=on (WAL flushed at each commit)"
        return Durability(Level.MATCH if sync == "always" else Level.STRONGER, how)

    def __init__(self, path: str, sync: SyncMode) -> None:
        super().__init__(path, sync)
        self._schema = "bench_" + hashlib.sha1(path.encode()).hexdigest()[:16]
        self._fresh = True

    def key(self, raw: bytes) -> Any:
        return raw.decode()

    def open(self) -> None:
        import psycopg
        from psycopg import sql
        from psycopg.conninfo import make_conninfo

        from store_api import NotFoundError, PostgresStore, Record

        dsn = server_dsn()
        if self._fresh:  # a new adapter is a new, empty store, as a new directory would be
            with psycopg.connect(dsn, autocommit=True) as conn:
                name = sql.Identifier(self._schema)
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(name))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(name))
            self._fresh = False
        options = f"-c search_path={self._schema}"
        self._store: Any = PostgresStore(make_conninfo(dsn, options=options), reap_interval=0)
        store = self._store
        write, read = store.write, store.read

        def put(key: str, value: bytes) -> object:
            return write(Record(key, value))

        def get(key: str) -> bytes | None:
            try:
                value: bytes = read(key)[0].value
            except NotFoundError:
                return None
            return value

        self.put, self.get, self.delete = put, get, store.delete

    def sync(self) -> None:
        """Nothing to do: every write returned after its commit was flushed."""

    def scan_prefix(self, prefix: bytes) -> int:
        return len(self._store.read(prefix.decode(), prefix=True))

    def close(self) -> None:
        self._store.disconnect()
