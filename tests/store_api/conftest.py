"""Fixtures for the ``store_api`` suites: a fake clock and one factory per ``Store`` backend.

The conformance and model-based suites only ever use ``store_factory`` (and the
``clock`` it wires in), so a new backend runs them unchanged: add a ``Backend``
subclass and its name to ``BACKENDS``. Test modules import the classes below
for type hints only (``if TYPE_CHECKING``), as pytest runs with importlib mode.
"""

from __future__ import annotations

import asyncio
import builtins
import itertools
import os
import threading
from collections.abc import Callable, Coroutine, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import Phase, settings

from engine.testing import MemoryFileSystem
from store_api import LogStore, Options, Record, Store
from store_api.aio import AsyncLogStore, AsyncStore

T = TypeVar("T")

#: A fixed starting instant (2023-11-14) so absolute datetimes make sense on the fake clock.
EPOCH = 1_700_000_000.0


# ``pytest --hypothesis-profile=no-shrink``: report the first failure without shrinking it,
# for quick mutation runs (shrinking a long stateful failure can take minutes).
settings.register_profile(
    "no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate], print_blob=True
)


class FakeClock:
    """A clock that only moves when told to; pass it as ``clock=``."""

    def __init__(self, now: float = EPOCH) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (or back, with a negative number)."""
        self.now += seconds


class Backend:
    """How the suites make a store of one kind: fresh, or again over the same data."""

    name = "abstract"

    def __init__(self, root: Path) -> None:
        self.root = root
        self._counter = itertools.count()

    def prepare(self, request: pytest.FixtureRequest) -> None:
        """Get whatever the backend needs from other fixtures (a server, say)."""

    def make(self, clock: FakeClock, **options: Any) -> Store:
        """A connected store over fresh, empty storage, using ``clock`` for expiry."""
        raise NotImplementedError

    def reopen(self, store: Store, clock: FakeClock) -> Store:
        """Disconnect ``store`` and return a new store object over the same data."""
        raise NotImplementedError

    def fresh_dir(self) -> str:
        """A new empty directory under the test's temporary root."""
        path = self.root / f"store-{next(self._counter)}"
        return os.fspath(path)


class LogBackend(Backend):
    """``LogStore`` in a temporary directory."""

    name = "log"

    def make(self, clock: FakeClock, **options: Any) -> Store:
        options.setdefault("sync", "none")
        return LogStore(options.pop("path", None) or self.fresh_dir(), clock=clock, **options)

    def reopen(self, store: Store, clock: FakeClock) -> Store:
        assert isinstance(store, LogStore)
        options = store.options()
        store.disconnect()
        return LogStore(
            options.path,
            database=options.database,
            table=options.table,
            sync=options.sync,
            **{**options.engine_options, "clock": clock},
        )


class MemoryLogBackend(LogBackend):
    """``LogStore`` over the engine's in-memory file system: same code, no disk."""

    name = "log-memfs"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.fs = MemoryFileSystem()

    def make(self, clock: FakeClock, **options: Any) -> Store:
        options.setdefault("fs", self.fs)
        return super().make(clock, **options)


class BlockingStore(Store):
    """A ``Store`` over an ``AsyncStore``: each call runs as a coroutine on an event loop.

    The loop runs in a thread of its own, so the async store's code really runs
    on a loop (exact reads on it, the rest in its pools) while the suites call
    it like any other ``Store``.
    """

    def __init__(self, store: AsyncStore) -> None:
        self.store = store
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result(timeout=120)

    def init(self, **options: Any) -> None:
        self._run(self.store.init(**options))

    def connect(self) -> None:
        self._run(self.store.connect())

    def options(self) -> Options:
        return self._run(self.store.options())

    def read(self, key: str, **options: Any) -> builtins.list[Record]:
        return self._run(self.store.read(key, **options))

    def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        call = self.store.write(record, database=database, table=table, expiry=expiry, ttl=ttl)
        self._run(call)

    def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        self._run(self.store.delete(key, database=database, table=table))

    def list(self, **options: Any) -> builtins.list[str]:
        return self._run(self.store.list(**options))

    def disconnect(self) -> None:
        self._run(self.store.disconnect())

    def __str__(self) -> str:
        return str(self.store)

    def stop(self) -> None:
        """Disconnect, then stop and join the loop's thread; stopping twice does nothing."""
        if self._loop.is_closed():
            return
        self.disconnect()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=60)
        self._loop.close()


class AsyncLogBackend(LogBackend):
    """``AsyncLogStore`` in a temporary directory, driven through ``BlockingStore``."""

    name = "async-log"

    def make(self, clock: FakeClock, **options: Any) -> Store:
        options.setdefault("sync", "none")
        path = options.pop("path", None) or self.fresh_dir()
        store = BlockingStore(AsyncLogStore(path, clock=clock, **options))
        store.connect()
        return store

    def reopen(self, store: Store, clock: FakeClock) -> Store:
        assert isinstance(store, BlockingStore)
        options = store.options()
        store.stop()
        again = BlockingStore(
            AsyncLogStore(
                options.path,
                database=options.database,
                table=options.table,
                sync=options.sync,
                **{**options.engine_options, "clock": clock},
            )
        )
        again.connect()
        return again


class PostgresBackend(Backend):
    """``PostgresStore`` on the session's throwaway server, in a fresh schema per store made.

    The store's clock is the fake clock (so expiry tests move time), and
    ``reap_interval=0``: no background sweeps racing the assertions.
    """

    name = "postgres"

    def prepare(self, request: pytest.FixtureRequest) -> None:
        self.fresh_dsn: Callable[[], str] = request.getfixturevalue("postgres_fresh_dsn")

    def make(self, clock: FakeClock, **options: Any) -> Store:
        from store_api import PostgresStore

        options.setdefault("reap_interval", 0)
        return PostgresStore(self.fresh_dsn(), clock=clock, **options)

    def reopen(self, store: Store, clock: FakeClock) -> Store:
        from store_api import PostgresStore

        options = store.options()
        store.disconnect()
        return PostgresStore(
            options.nodes[0],
            database=options.database,
            table=options.table,
            **{**options.engine_options, "clock": clock},
        )


class AsyncPostgresBackend(PostgresBackend):
    """``AsyncPostgresStore`` on the session's server, driven through ``BlockingStore``."""

    name = "async-postgres"

    def make(self, clock: FakeClock, **options: Any) -> Store:
        from store_api.aio import AsyncPostgresStore

        options.setdefault("reap_interval", 0)
        store = BlockingStore(AsyncPostgresStore(self.fresh_dsn(), clock=clock, **options))
        store.connect()
        return store

    def reopen(self, store: Store, clock: FakeClock) -> Store:
        from store_api.aio import AsyncPostgresStore

        assert isinstance(store, BlockingStore)
        options = store.options()
        store.stop()
        again = BlockingStore(
            AsyncPostgresStore(
                options.nodes[0],
                database=options.database,
                table=options.table,
                **{**options.engine_options, "clock": clock},
            )
        )
        again.connect()
        return again


BACKENDS: dict[str, type[Backend]] = {
    "async-postgres": AsyncPostgresBackend,
    "log": LogBackend,
    "log-memfs": MemoryLogBackend,
    "async-log": AsyncLogBackend,
    "postgres": PostgresBackend,
}


class StoreFactory:
    """Makes stores of one backend for one test and disconnects them all afterwards."""

    def __init__(self, backend: Backend, clock: FakeClock) -> None:
        self.backend = backend
        self.clock = clock
        self.stores: list[Store] = []

    def __call__(self, **options: Any) -> Store:
        """A connected store over fresh storage (options as for the backend's constructor)."""
        store = self.backend.make(self.clock, **options)
        self.stores.append(store)
        return store

    def reopen(self, store: Store) -> Store:
        """Close ``store`` and open the same data again in a new store object."""
        again = self.backend.reopen(store, self.clock)
        self.stores.append(again)
        return again

    def close_all(self) -> None:
        """Disconnect every store this factory made (disconnect is idempotent)."""
        for store in self.stores:
            if isinstance(store, BlockingStore):
                store.stop()
            else:
                store.disconnect()
        self.stores.clear()


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock starting at ``EPOCH``."""
    return FakeClock()


@pytest.fixture(params=sorted(BACKENDS))
def store_factory(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> Iterator[StoreFactory]:
    """One factory per backend: every test that uses it runs against each backend."""
    backend = BACKENDS[request.param](tmp_path)
    backend.prepare(request)
    factory = StoreFactory(backend, clock)
    yield factory
    factory.close_all()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    """A fresh connected store of the backend under test."""
    return store_factory()
