"""A store that stores nothing: what the harness itself costs per operation.

``seglog bench`` runs a YCSB mix on it before measuring anything, and records the
time per operation in results.json (``machine.harness_overhead``), so a reader can
tell the harness's share of a fast store's latency. It is also the smallest
complete adapter: ``seglog bench --adapter benchmarks.adapters.null:NullAdapter``.
"""

from __future__ import annotations

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode


class NullAdapter(Adapter):
    name = "null"
    module = "benchmarks"
    threadsafe = True
    self_syncing = True

    @classmethod
    def version(cls) -> str:
        return "-"

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        return Durability(Level.WEAKER, "keeps nothing: measures the harness alone")

    def open(self) -> None:
        def put(key: bytes, value: bytes) -> None:
            return None

        def get(key: bytes) -> bytes | None:
            return b""

        def delete(key: bytes) -> None:
            return None

        self.put, self.get, self.delete = put, get, delete

    def scan(self, start: bytes, count: int) -> int:
        return count

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass
