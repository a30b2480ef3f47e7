"""``AsyncLogStore``: ``LogStore`` for asyncio, without blocking the event loop on I/O.

What runs where, and why:

- **On the loop**: exact reads, ``options()`` and ``str()``. An exact read is
  an index lookup and a CRC check of a memory-mapped record, with no lock and
  no system call: a few microseconds, less than a hop to a thread costs.
- **In the store's threads**: writes, ``write_many`` (one hop for all its
  records) and deletes, whatever the sync mode.
  With ``sync="always"`` a write waits for its fsync; with any mode a write
  may roll the segment over (an fsync of the old one and a new file) or wait
  for the write lock while another writer does. Prefix/suffix reads and
  ``list`` go there too: they take the write lock for their snapshot, and
  their cost grows with the result.
- **In the loop's default executor**: ``connect`` (opening recovers the
  directory), ``disconnect`` (fsync and close) and ``init`` (may reopen).
- **Compaction** runs in the engine's own background thread, as for
  ``LogStore``.

The store's threads come from a pool of up to ``max_threads`` (default 32),
made on connect and drained on disconnect. Durable writers share an fsync
(group commit) only while they wait at the same time, so up to
``max_threads`` concurrent ``sync="always"`` writes share fsyncs; more queue.

A disconnected store reconnects (off the loop) on its next operation, as
``LogStore`` does. A write or delete whose awaiting task is cancelled still
completes or fails in its thread, all or nothing, as with any cancelled I/O.
An ``AsyncLogStore`` belongs to one event loop at a time.
"""

from __future__ import annotations

import asyncio
import builtins
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from store_api.aio.interface import AsyncStore
from store_api.logstore import LogStore
from store_api.options import Options
from store_api.record import Record

T = TypeVar("T")


class AsyncLogStore(AsyncStore):
    """A ``LogStore`` (same arguments, same rules) whose methods are coroutines.

    Construction does no I/O: the directory is opened by ``connect()``,
    ``async with``, or the first operation. Bad options still raise here.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_threads: int = 32,
        **options: Any,
    ) -> None:
        if isinstance(max_threads, bool) or not isinstance(max_threads, int):
            raise TypeError(f"max_threads must be an int, not {type(max_threads).__name__}")
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self._store = LogStore(path, connect=False, **options)
        self._max_threads = max_threads
        #: The pool for writes and scans; set exactly while the store is connected.
        self._pool: ThreadPoolExecutor | None = None
        self._lifecycle = asyncio.Lock()

    # -- lifecycle ---------------------------------------------------------

    async def connect(self) -> None:
        """Open the directory off the loop unless connected; ``LockedError`` if another holds it."""
        if self._pool is not None:
            return
        async with self._lifecycle:
            if self._pool is None:
                await asyncio.to_thread(self._store.connect)
                self._pool = self._new_pool()

    async def disconnect(self) -> None:
        """Wait for operations in flight, then flush and close off the loop; idempotent."""
        async with self._lifecycle:
            pool, self._pool = self._pool, None
            await asyncio.to_thread(_drain_then, pool, self._store.disconnect)

    async def init(self, **options: Any) -> None:
        """Merge ``options`` (``LogStore.init``) off the loop, after operations in flight."""
        async with self._lifecycle:
            pool, self._pool = self._pool, None
            try:
                await asyncio.to_thread(_drain_then, pool, partial(self._store.init, **options))
            finally:
                if self._store.connected:
                    self._pool = self._new_pool()

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(self._max_threads, thread_name_prefix="seglog-aio")

    @property
    def connected(self) -> bool:
        """Whether the store is open right now."""
        return self._pool is not None

    async def options(self) -> Options:
        """The options in force (immutable)."""
        return self._store.options()

    def __str__(self) -> str:
        return "seglog"

    def __repr__(self) -> str:
        options = self._store.options()
        state = "connected" if self._pool is not None else "disconnected"
        return (
            f"AsyncLogStore({options.path!r}, database={options.database!r}, "
            f"table={options.table!r}, sync={options.sync!r}) <{state}>"
        )

    async def _off_loop(self, call: Callable[[], T]) -> T:
        """Run ``call`` in the store's pool, connecting first if needed."""
        while (pool := self._pool) is None:
            await self.connect()
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    # -- operations ----------------------------------------------------------

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
        """One record by exact key (on the loop), or a prefix/suffix query (off it)."""
        if prefix or suffix:
            query = partial(
                self._store.read,
                key,
                database=database,
                table=table,
                prefix=prefix,
                suffix=suffix,
                limit=limit,
                offset=offset,
            )
            return await self._off_loop(query)
        while self._pool is None:
            await self.connect()
        return self._store.read(key, database=database, table=table, limit=limit, offset=offset)

    async def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Upsert ``record`` in a pool thread (it may wait for an fsync or a rollover)."""
        write = partial(
            self._store.write, record, database=database, table=table, expiry=expiry, ttl=ttl
        )
        await self._off_loop(write)

    async def write_many(
        self, records: Iterable[Record], *, database: str = "", table: str = ""
    ) -> int:
        """``LogStore.write_many`` in one pool thread: one hop for many writes; how many.

        ``records`` is read on the loop first (it may be a generator of loop state).
        """
        batch = builtins.list(records)
        bulk = partial(self._store.write_many, batch, database=database, table=table)
        return await self._off_loop(bulk)

    async def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` in a pool thread; a missing key is not an error."""
        await self._off_loop(partial(self._store.delete, key, database=database, table=table))

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
        """Live keys matching ``prefix`` and ``suffix``, ascending, paginated (off the loop)."""
        query = partial(
            self._store.list,
            database=database,
            table=table,
            prefix=prefix,
            suffix=suffix,
            limit=limit,
            offset=offset,
        )
        return await self._off_loop(query)


def _drain_then(pool: ThreadPoolExecutor | None, then: Callable[[], object]) -> None:
    """Wait for ``pool``'s operations to finish and its threads to end, then call ``then``."""
    if pool is not None:
        pool.shutdown(wait=True)
    then()
