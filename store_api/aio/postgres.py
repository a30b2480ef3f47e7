"""``AsyncPostgresStore``: ``PostgresStore`` for asyncio, on psycopg's asyncio pool.

Every call is a coroutine that awaits the server on the loop: no thread per
call. It sends exactly what ``PostgresStore`` sends (both build their
statements with ``store_api.postgres.calls``, where every argument check
runs first), with the same deadline per call, the same retries, and the same
watchdog, which shuts the socket of a call past its deadline so a stopped
server cannot hold a coroutine forever. Expired rows are reaped by a task on
the store's loop. Construction does no I/O: ``connect()``, ``async with`` or
the first operation opens the pool. A store belongs to one event loop.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from datetime import datetime, timedelta
from typing import Any, Final, TypeVar

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from store_api.aio.interface import AsyncStore
from store_api.errors import UnavailableError
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
AConn = psycopg.AsyncConnection[Any]
log: Final = logging.getLogger(__name__)


class AsyncPostgresStore(AsyncStore):
    """A ``PostgresStore`` (same arguments, same rules) whose methods are coroutines."""

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
        self._pool: AsyncConnectionPool[AConn] | None = None
        self._dialect: schema.Dialect | None = None
        self._registered: set[int] = set()
        self._reaper: asyncio.Task[None] | None = None
        self._lifecycle = asyncio.Lock()

    # -- lifecycle -----------------------------------------------------------

    async def connect(self) -> None:
        """Open the pool and make sure the schema exists; ``UnavailableError`` if unreachable."""
        async with self._lifecycle:
            if self._pool is not None:
                return
            backend = self._options.engine_options
            timeout = self._calls.timeout
            pool: AsyncConnectionPool[AConn] = AsyncConnectionPool(
                conninfo(self._options.nodes, timeout),
                min_size=1,
                max_size=int(backend["pool_size"]),
                timeout=timeout,
                reconnect_timeout=max(10.0, 2 * timeout),
                kwargs={"autocommit": True},
                open=False,
                name="seglog-aio",
            )
            await pool.open(wait=False)
            self._pool = pool
            try:
                self._dialect = await self._run(self._create_schema)
            except BaseException:
                self._pool = None
                await pool.close(timeout=0)
                raise
            interval = float(backend["reap_interval"])
            if interval > 0:
                self._reaper = asyncio.create_task(self._reap_every(interval))

    async def disconnect(self) -> None:
        """Close every connection; idempotent. The next call reconnects by itself."""
        async with self._lifecycle:
            pool, self._pool = self._pool, None
            reaper, self._reaper = self._reaper, None
            if reaper is not None:
                reaper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reaper
            if pool is not None:
                await pool.close(timeout=self._calls.timeout)

    @property
    def connected(self) -> bool:
        """Whether the pool is open right now."""
        return self._pool is not None

    async def init(self, **options: Any) -> None:
        """Merge ``options``; reconnect if a connection option changed while connected."""
        old = self._options
        new = checked(old.merge(**options))
        reopen = self._pool is not None and (
            new.nodes != old.nodes or new.engine_options != old.engine_options
        )
        if reopen:
            await self.disconnect()
        self._options, self._calls = new, Calls(new)
        if reopen:
            try:
                await self.connect()
            except BaseException:
                self._options, self._calls = old, Calls(old)
                raise

    async def options(self) -> Options:
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
            f"AsyncPostgresStore(<{len(options.nodes)} node(s)>, database={options.database!r}, "
            f"table={options.table!r}) <{state}>"
        )

    # -- running statements ---------------------------------------------------

    async def _run(self, work: Callable[[AConn], Awaitable[T]]) -> T:
        """``work(conn)`` on a pooled connection within ``timeout``, retrying what is safe."""
        while (pool := self._pool) is None:
            await self.connect()
        attempts = Attempts(self._calls.timeout)
        while True:
            try:
                conn = await pool.getconn(attempts.left())
            except PoolTimeout as exc:
                raise attempts.no_connection(exc) from exc
            token = WATCHDOG.watch(conn, attempts.deadline)
            try:
                return await work(conn)
            except psycopg.Error as exc:
                if not retryable(exc, conn.closed, conn.broken):
                    raise
                if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
                    await conn.close()
                error = exc
            finally:
                WATCHDOG.release(token)
                await pool.putconn(conn)
            await asyncio.sleep(attempts.pause(error, conn.closed))

    async def _call(self, call: Call[T]) -> T:
        """Run one ``Call`` (see ``_run``) and turn what it fetched into its result."""

        async def work(conn: AConn) -> Any:
            cursor = await conn.execute(call.query, call.params)
            if call.fetch == "one":
                return await cursor.fetchone()
            return await cursor.fetchall() if call.fetch == "all" else cursor.rowcount

        try:
            fetched = await self._run(work)
        except psycopg.errors.DataError as exc:
            if call.writes_expiry:
                raise out_of_range(exc) from None
            raise
        return call.result(fetched)

    async def _create_schema(self, conn: AConn) -> schema.Dialect:
        """Detect the dialect and create the tables and indexes if missing."""
        row = await (await conn.execute("SELECT version()")).fetchone()
        dialect = dialect_of(self._options, str(row[0]) if row else "")
        for statement in schema.create_statements(dialect):
            # UniqueViolation: another store created it at the same moment.
            with contextlib.suppress(psycopg.errors.UniqueViolation):
                await conn.execute(statement)
        return dialect

    async def _reap_every(self, interval: float) -> None:
        """Delete expired records every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.reap_expired()
            except (UnavailableError, psycopg.Error) as exc:
                log.warning("reaping expired records failed (will retry): %s", exc)

    # -- namespaces ----------------------------------------------------------

    async def _register(self, ns: Namespace) -> None:
        """Record the names of namespace ``ns`` once per store (for listing and copying)."""
        if ns.id in self._registered:
            return
        insert, check = self._calls.register(ns)
        if not await self._call(insert):
            await self._call(check)
        self._registered.add(ns.id)

    async def namespaces(self) -> builtins.list[tuple[str, str]]:
        """Every (database, table) ever written through a PostgreSQL store on this database."""
        return await self._call(self._calls.namespaces())

    # -- write and delete ----------------------------------------------------

    async def write(
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
        await self._register(ns)
        await self._call(upsert)

    async def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""
        await self._call(self._calls.delete(key, database, table))

    async def write_many(
        self, records: Iterable[Record], *, database: str = "", table: str = "", batch: int = 1000
    ) -> int:
        """``PostgresStore.write_many``: ``batch`` records per statement; how many."""
        ns, upserts = self._calls.write_many(records, database, table, batch)
        count = 0
        for upsert in upserts:
            await self._register(ns)
            count += await self._call(upsert)
        return count

    async def records(
        self, *, database: str = "", table: str = "", batch: int = 1000
    ) -> AsyncIterator[Record]:
        """Every live record of one table, ascending by key, ``batch`` per query."""
        ns = self._calls.namespace(database, table)
        after = b""
        while True:
            rows = await self._call(self._calls.page_after(ns, after, batch))
            for row in rows:
                yield to_record(text(row[0]), *row[1:])
            if len(rows) < batch:
                return
            after = bytes(rows[-1][0])

    async def reap_expired(self) -> int:
        """Delete expired records in batches (from seglog's table only); how many went."""
        batch = int(self._options.engine_options["reap_batch"])
        total = 0
        while True:
            count = await self._call(self._calls.reap(batch))
            total += count
            if count < batch:
                return total

    # -- reads -----------------------------------------------------------------

    async def read(
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
        call = self._calls.read(key, database, table, prefix, suffix, limit, offset)
        return await self._call(call)

    async def list(
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
        return await self._call(self._calls.list(database, table, prefix, suffix, limit, offset))
