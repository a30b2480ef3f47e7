"""``PostgresStore``: the ``Store`` contract on PostgreSQL, YugabyteDB and CockroachDB.

A thread-safe pool (``psycopg_pool``) of autocommit connections: every call is
one statement, so a write that returns is committed. Every call runs under a
deadline of ``timeout`` seconds covering the wait for a connection, retries and
the statement itself (``watchdog``); past it the call raises
``UnavailableError`` rather than hang, and the pool replaces broken connections
by itself. Connection failures, server shutdowns and serialization failures
(SQLSTATE 40001, routine on distributed engines) are retried within the
deadline: every statement here is idempotent, so a retry is always safe.

What each call sends, and every argument check, is in ``calls`` (shared with
``store_api.aio.AsyncPostgresStore``); the schema and the SQL text in
``schema``; the rules shared with ``LogStore`` in ``store_api.rules``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from store_api.errors import UnavailableError
from store_api.interface import Store
from store_api.options import Options
from store_api.postgres import schema
from store_api.postgres.calls import (
    Attempts,
    Call,
    Calls,
    Namespace,
    checked,
    conninfo,
    dialect_of,
    initial_options,
    out_of_range,
    retryable,
    text,
    to_record,
)
from store_api.postgres.watchdog import WATCHDOG
from store_api.record import Record

T = TypeVar("T")
Conn = psycopg.Connection[Any]
log: Final = logging.getLogger(__name__)


class PostgresStore(Store):
    """A ``Store`` in one PostgreSQL-protocol database (STORE_API.md, "PostgresStore").

    ``dsn`` is a libpq URL or ``key=value`` string; several hosts mean failover
    (``target_session_attrs=read-write`` is added unless given). Without it, the
    ``nodes`` are used: one DSN, or several single-host URLs merged into one
    multi-host DSN. Backend options: ``timeout`` (seconds a call may take, 5),
    ``pool_size`` (most connections, 10), ``reap_interval`` (seconds between
    sweeps that delete expired rows, 60; 0 disables them), ``reap_batch``,
    ``clock`` (a ``time.time``-like callable for expiry; ``None`` uses the
    server's clock) and ``dialect`` (``"postgres"``, ``"yugabyte"``,
    ``"cockroach"``; detected when ``None``).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        database: str = "micro",
        table: str = "micro",
        nodes: tuple[str, ...] = (),
        **backend_options: Any,
    ) -> None:
        self._options = initial_options(dsn, database, table, nodes, backend_options)
        self._calls = Calls(self._options)
        self._lock = threading.RLock()
        self._pool: ConnectionPool[Conn] | None = None
        self._dialect: schema.Dialect | None = None
        self._registered: set[int] = set()
        self._reaper: _Reaper | None = None
        self.connect()

    # -- lifecycle -----------------------------------------------------------

    def connect(self) -> None:
        """Open the pool and make sure the schema exists; ``UnavailableError`` if unreachable."""
        with self._lock:
            if self._pool is not None:
                return
            backend = self._options.engine_options
            timeout = float(backend["timeout"])
            pool: ConnectionPool[Conn] = ConnectionPool(
                conninfo(self._options.nodes, timeout),
                min_size=1,
                max_size=int(backend["pool_size"]),
                timeout=timeout,
                reconnect_timeout=max(10.0, 2 * timeout),
                kwargs={"autocommit": True},
                open=False,
                name="seglog",
            )
            pool.open(wait=False)
            self._pool = pool
            try:
                self._ensure_schema()
            except BaseException:
                self._pool = None
                pool.close(timeout=0)
                raise
            interval = float(backend["reap_interval"])
            if interval > 0:
                self._reaper = _Reaper(self, interval)

    def disconnect(self) -> None:
        """Close every connection; idempotent. The next call reconnects by itself."""
        with self._lock:
            pool, self._pool = self._pool, None
            reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.stop()
        if pool is not None:
            pool.close(timeout=float(self._options.engine_options["timeout"]))

    @property
    def connected(self) -> bool:
        """Whether the pool is open right now."""
        return self._pool is not None

    def init(self, **options: Any) -> None:
        """Merge ``options``; reconnect if a connection option changed while connected."""
        with self._lock:
            old = self._options
            new = checked(old.merge(**options))
            reopen = self._pool is not None and (
                new.nodes != old.nodes or new.engine_options != old.engine_options
            )
            if reopen:
                self.disconnect()
            self._options, self._calls = new, Calls(new)
            if reopen:
                try:
                    self.connect()
                except BaseException:
                    self._options, self._calls = old, Calls(old)
                    raise

    def options(self) -> Options:
        """The options in force (immutable)."""
        return self._options

    @property
    def dialect(self) -> schema.Dialect | None:
        """The engine on the other end, once connected."""
        return self._dialect

    def __str__(self) -> str:
        return "postgres"

    def __repr__(self) -> str:
        state = "connected" if self._pool is not None else "disconnected"
        options = self._options
        return (
            f"PostgresStore(<{len(options.nodes)} node(s)>, database={options.database!r}, "
            f"table={options.table!r}) <{state}>"
        )

    # -- running statements ---------------------------------------------------

    def _run(self, work: Callable[[Conn], T]) -> T:
        """``work(conn)`` on a pooled connection within ``timeout``, retrying what is safe."""
        pool = self._pool
        if pool is None:
            self.connect()
            pool = self._pool
            assert pool is not None
        attempts = Attempts(self._calls.timeout)
        while True:
            try:
                conn = pool.getconn(attempts.left())
            except PoolTimeout as exc:
                raise attempts.no_connection(exc) from exc
            token = WATCHDOG.watch(conn, attempts.deadline)
            try:
                return work(conn)
            except psycopg.Error as exc:
                if not retryable(exc, conn.closed, conn.broken):
                    raise
                if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                error = exc
            finally:
                WATCHDOG.release(token)
                pool.putconn(conn)
            time.sleep(attempts.pause(error, conn.closed))

    def _call(self, call: Call[T]) -> T:
        """Run one ``Call`` (see ``_run``) and turn what it fetched into its result."""

        def work(conn: Conn) -> Any:
            cursor = conn.execute(call.query, call.params)
            if call.fetch == "one":
                return cursor.fetchone()
            return cursor.fetchall() if call.fetch == "all" else cursor.rowcount

        try:
            fetched = self._run(work)
        except psycopg.errors.DataError as exc:
            if call.writes_expiry:
                raise out_of_range(exc) from None
            raise
        return call.result(fetched)

    def _ensure_schema(self) -> None:
        """Detect the dialect and create the tables and indexes if missing."""

        def create(conn: Conn) -> schema.Dialect:
            row = conn.execute("SELECT version()").fetchone()
            dialect = dialect_of(self._options, str(row[0]) if row else "")
            for statement in schema.create_statements(dialect):
                # UniqueViolation: another store created it at the same moment.
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    conn.execute(statement)
            return dialect

        self._dialect = self._run(create)

    # -- namespaces ----------------------------------------------------------

    def _register(self, ns: Namespace) -> None:
        """Record the names of namespace ``ns`` once per store (for listing and copying)."""
        if ns.id in self._registered:
            return
        insert, check = self._calls.register(ns)
        if not self._call(insert):
            self._call(check)
        self._registered.add(ns.id)

    def namespaces(self) -> builtins.list[tuple[str, str]]:
        """Every (database, table) ever written through a ``PostgresStore`` on this database."""
        return self._call(self._calls.namespaces())

    # -- write and delete ----------------------------------------------------

    def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Upsert ``record``: value, metadata and expiry all replaced, committed on return."""
        ns, upsert = self._calls.write(record, database, table, expiry, ttl)
        self._register(ns)
        self._call(upsert)

    def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""
        self._call(self._calls.delete(key, database, table))

    def write_many(
        self, records: Iterable[Record], *, database: str = "", table: str = "", batch: int = 1000
    ) -> int:
        """Write each record as ``write`` would, ``batch`` per statement; how many.

        Each batch is one statement, committed whole or not at all and retried
        whole (upserts are idempotent), so re-running an interrupted bulk write
        is safe. Keys must not repeat within one call.
        """
        ns, upserts = self._calls.write_many(records, database, table, batch)
        count = 0
        for upsert in upserts:
            self._register(ns)
            count += self._call(upsert)
        return count

    def records(
        self, *, database: str = "", table: str = "", batch: int = 1000
    ) -> Iterator[Record]:
        """Every live record of one table, ascending by key, fetched ``batch`` at a time.

        Each page starts after the last key of the one before (keyset pagination:
        every page is one index range, however deep into the table).
        """
        ns = self._calls.namespace(database, table)
        after = b""
        while True:
            rows = self._call(self._calls.page_after(ns, after, batch))
            for row in rows:
                yield to_record(text(row[0]), *row[1:])
            if len(rows) < batch:
                return
            after = bytes(rows[-1][0])

    def reap_expired(self) -> int:
        """Delete expired records in batches (from seglog's table only); how many went."""
        batch = int(self._options.engine_options["reap_batch"])
        total = 0
        while True:
            count = self._call(self._calls.reap(batch))
            total += count
            if count < batch:
                return total

    # -- reads -----------------------------------------------------------------

    def read(
        self,
        key: str,
        *,
        database: str = "",
        table: str = "",
        prefix: bool = False,
        suffix: bool = False,
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[Record]:
        """One record by exact key, or the matches of a prefix and/or suffix query."""
        return self._call(self._calls.read(key, database, table, prefix, suffix, limit, offset))

    def list(
        self,
        *,
        database: str = "",
        table: str = "",
        prefix: str = "",
        suffix: str = "",
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[str]:
        """Live keys starting with ``prefix`` and ending with ``suffix``, ascending, paginated."""
        return self._call(self._calls.list(database, table, prefix, suffix, limit, offset))


class _Reaper:
    """A daemon thread that deletes expired records every ``interval`` seconds."""

    def __init__(self, store: PostgresStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="seglog-postgres-reaper", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._store.reap_expired()
            except (UnavailableError, psycopg.Error) as exc:
                log.warning("reaping expired records failed (will retry): %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()
