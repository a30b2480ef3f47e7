"""rocksdict (RocksDB), in raw mode so keys and values are stored as given.

* always: ``WriteOptions.sync=True`` fsyncs the WAL before a write returns.
* periodic: default write options hand each WAL record to the OS; the harness calls
  ``flush_wal(sync=True)`` every sync_interval.
* none: ``disable_wal=True`` keeps writes in the memtable (process memory) until
  :meth:`sync` flushes the memtable to an SST file.
"""

from __future__ import annotations

from importlib.metadata import version as dist_version
from itertools import islice
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode


class RocksdictAdapter(Adapter):
    name = "rocksdict"
    module = "rocksdict"
    threadsafe = True

    @classmethod
    def version(cls) -> str:
        return dist_version("rocksdict")

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.MATCH, "WriteOptions.sync=True")
        if sync == "periodic":
            return Durability(Level.MATCH, "default WAL writes, flush_wal(sync) every interval")
        return Durability(Level.MATCH, "disable_wal=True, memtable flushed by sync()")

    def open(self) -> None:
        from rocksdict import Options, Rdict, WriteOptions

        self._db = db = Rdict(self.path, Options(raw_mode=True))
        # Any: disable_wal is a property at run time, though the shipped stub declares a
        # method; typed this way, mypy agrees whether or not rocksdict is installed.
        write_options: Any = WriteOptions()
        write_options.sync = self.sync_mode == "always"
        write_options.disable_wal = self.sync_mode == "none"
        db.set_write_options(write_options)
        self.put, self.get, self.delete = db.put, db.get, db.delete

    def sync(self) -> None:
        if self.sync_mode == "none":
            self._db.flush(True)
        else:
            self._db.flush_wal(True)

    def scan_prefix(self, prefix: bytes) -> int:
        count = 0
        for key, _value in self._db.items(from_key=prefix):
            if not isinstance(key, bytes) or not key.startswith(prefix):
                break
            count += 1
        return count

    def scan(self, start: bytes, count: int) -> int:
        return sum(1 for _ in islice(self._db.items(from_key=start), count))

    def close(self) -> None:
        if self.sync_mode == "none":
            self._db.flush(True)
        self._db.close()
