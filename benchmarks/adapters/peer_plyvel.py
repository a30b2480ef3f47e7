"""plyvel (LevelDB): every put appends to LevelDB's log with one write() call.

* always: ``put(sync=True)`` fsyncs the log before returning (and LevelDB
  groups concurrent writers into one log write and one fsync).
* periodic: plain ``put`` hands each record to the OS; the harness writes an empty
  synced batch every sync_interval, which fsyncs the log.
* none: LevelDB has no mode that keeps writes in the process; it runs as in
  "periodic", which is stronger than asked.
"""

from __future__ import annotations

from itertools import islice

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode


class PlyvelAdapter(Adapter):
    name = "plyvel"
    module = "plyvel"
    threadsafe = True

    @classmethod
    def version(cls) -> str:
        import plyvel

        return f"{plyvel.__version__} (LevelDB {plyvel.__leveldb_version__})"

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.MATCH, "put(sync=True)")
        if sync == "periodic":
            return Durability(Level.MATCH, "put(), a synced empty batch every interval")
        return Durability(Level.STRONGER, "put(): no in-process write buffer to choose")

    def open(self) -> None:
        import plyvel

        self._db = db = plyvel.DB(self.path, create_if_missing=True)
        if self.sync_mode == "always":

            def put(key: bytes, value: bytes) -> object:
                return db.put(key, value, sync=True)

            def delete(key: bytes) -> object:
                return db.delete(key, sync=True)

            self.put, self.delete = put, delete
        else:
            self.put, self.delete = db.put, db.delete
        self.get = db.get

    def sync(self) -> None:
        with self._db.write_batch(sync=True):
            pass

    def scan_prefix(self, prefix: bytes) -> int:
        return sum(1 for _ in self._db.iterator(prefix=prefix))

    def scan(self, start: bytes, count: int) -> int:
        return sum(1 for _ in islice(self._db.iterator(start=start), count))

    def close(self) -> None:
        self._db.close()
