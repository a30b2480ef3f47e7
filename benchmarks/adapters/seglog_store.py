"""seglog's ``store_api.LogStore``: the go-micro Store interface over the engine.

Keys are ``str`` and every write builds a ``Record``, as an application's would;
measured against the engine it shows what the interface layer costs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode
from benchmarks.adapters.seglog_engine import seglog_version


class LogStoreAdapter(Adapter):
    name = "seglog-store"
    module = "store_api"
    python_index = True
    threadsafe = True
    self_syncing = True

    @classmethod
    def version(cls) -> str:
        return seglog_version()

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        return Durability(Level.MATCH, f'LogStore(sync="{sync}")')

    def key(self, raw: bytes) -> Any:
        return raw.decode()

    def open(self) -> None:
        from store_api import LogStore, NotFoundError, Record

        self._store: Any = LogStore(self.path, sync=self.sync_mode)
        store = self._store
        write, read = store.write, store.read

        def put(key: str, value: bytes) -> object:
            return write(Record(key=key, value=value))

        def get(key: str) -> bytes | None:
            try:
                value: bytes = read(key)[0].value
            except NotFoundError:
                return None
            return value

        self.put, self.get, self.delete = put, get, store.delete

    def _engine_method(self, name: str) -> Callable[[], Any] | None:
        """LogStore's own method ``name`` if it has one, else its engine's.

        The Store interface has neither ``sync()`` nor ``stats()``; reaching the
        engine is for the harness only (the timed "none" sync and fsync counts).
        """
        method = getattr(self._store, name, None)
        if callable(method):
            return method  # type: ignore[no-any-return]
        for attr in ("engine", "_engine", "db", "_db"):
            inner = getattr(self._store, attr, None)
            method = getattr(inner, name, None)
            if callable(method):
                return method  # type: ignore[no-any-return]
        return None

    def counters(self) -> dict[str, int]:
        stats = self._engine_method("stats")
        if stats is None:
            return {}
        found = stats()
        return {k: v for k, v in found.items() if isinstance(v, int) and not isinstance(v, bool)}

    def sync(self) -> None:
        method = self._engine_method("sync")
        if method is not None:
            method()
        else:  # disconnect() flushes and fsyncs; reconnecting costs a reopen
            self._store.disconnect()
            self._store.connect()

    def scan_prefix(self, prefix: bytes) -> int:
        return len(self._store.read(prefix.decode(), prefix=True))

    def close(self) -> None:
        self._store.disconnect()
