"""seglog's engine, driven directly: ``Engine.open(path, sync=mode)``.

The baseline every ratio is computed against. All three modes are its own.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as dist_version
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode


def seglog_version() -> str:
    try:
        return dist_version("seglog")
    except PackageNotFoundError:
        return "?"


class EngineAdapter(Adapter):
    name = "seglog"
    module = "engine"
    python_index = True
    threadsafe = True
    self_syncing = True

    @classmethod
    def version(cls) -> str:
        return seglog_version()

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        return Durability(Level.MATCH, f'Engine.open(sync="{sync}")')

    def open(self) -> None:
        from engine import Engine

        self._db: Any = Engine.open(self.path, sync=self.sync_mode)
        db = self._db
        self.put, self.get, self.delete = db.put, db.get, db.delete

    def sync(self) -> None:
        self._db.sync()

    def scan_prefix(self, prefix: bytes) -> int:
        return sum(1 for _ in self._db.scan(prefix=prefix))

    def scan(self, start: bytes, count: int) -> int:
        return sum(1 for _ in self._db.scan(start=start, limit=count))

    def counters(self) -> dict[str, int]:
        stats = self._db.stats()
        return {k: v for k, v in stats.items() if isinstance(v, int) and not isinstance(v, bool)}

    def close(self) -> None:
        self._db.close()
