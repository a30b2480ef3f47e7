"""semidbm: pure Python; an append-only data file plus an in-memory dict index.

* always: semidbm has no per-write fsync option; its users call ``sync()`` (an
  fsync) after each write, and so does this adapter: the same guarantee, emulated.
* periodic: each ``db[key] = value`` is one ``os.write``, handed to the OS; the
  harness calls ``sync()`` every sync_interval.
* none: there is no in-process buffer to choose; it runs as in "periodic",
  stronger than asked.

Keys have no order (the index is a dict), so there is no prefix scan.
"""

from __future__ import annotations

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode


class SemidbmAdapter(Adapter):
    name = "semidbm"
    module = "semidbm"
    python_index = True
    ordered = False

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        if sync == "always":
            return Durability(Level.EMULATED, "sync() (an fsync) after every write")
        if sync == "periodic":
            return Durability(Level.MATCH, "an os.write per write, sync() every interval")
        return Durability(Level.STRONGER, "an os.write per write: no in-process buffer")

    def open(self) -> None:
        import semidbm

        self._db = db = semidbm.open(self.path, "c")
        if self.sync_mode == "always":
            setitem, delitem, fsync = db.__setitem__, db.__delitem__, db.sync

            def put(key: bytes, value: bytes) -> object:
                setitem(key, value)
                return fsync()

            def delete(key: bytes) -> object:
                delitem(key)
                return fsync()

            self.put, self.delete = put, delete
        else:
            self.put, self.delete = db.__setitem__, db.__delitem__
        getitem = db.__getitem__

        def get(key: bytes) -> bytes | None:
            # semidbm raises KeyError for a missing key; a hit pays only the try.
            try:
                value: bytes = getitem(key)
            except KeyError:
                return None
            return value

        self.get = get

    def sync(self) -> None:
        self._db.sync()

    def close(self) -> None:
        self._db.close()
