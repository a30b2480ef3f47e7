"""dbm (standard library), with whichever backend this Python has.

``dbm.gnu`` when the interpreter was built with it: its ``"s"`` flag syncs every
write (always); without it writes sit in gdbm's cache until ``sync()``/close
(none); there is no setting that hands each write to the OS (periodic runs the
nearest weaker one).

``dbm.dumb`` otherwise (pure Python): each value is written to the data file at
once, but the index of keys lives in a dict and reaches disk only on ``sync()`` or
close, and never with an fsync. So: "none" matches once this adapter's ``sync()``
adds the fsyncs; "periodic" is weaker (a crash loses new keys); "always" would
rewrite the whole index per write and is not offered.

Neither keeps keys in order, so there is no prefix scan.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from typing import Any

from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode, fsync_paths


def _has_gnu() -> bool:
    try:
        return importlib.util.find_spec("_gdbm") is not None
    except (ImportError, ValueError):
        return False


class DbmAdapter(Adapter):
    name = "dbm"
    module = "dbm"
    ordered = False
    python_index = not _has_gnu()

    @classmethod
    def backend(cls) -> str:
        return "dbm.gnu" if _has_gnu() else "dbm.dumb"

    @classmethod
    def version(cls) -> str:
        return f"{cls.backend()} (Python {platform.python_version()})"

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability | None:
        if cls.backend() == "dbm.gnu":
            if sync == "always":
                return Durability(Level.MATCH, "dbm.gnu, flag 's' (sync every write)")
            if sync == "periodic":
                return Durability(Level.WEAKER, "dbm.gnu: writes cached in-process until sync()")
            return Durability(Level.MATCH, "dbm.gnu, writes cached until sync()")
        if sync == "always":
            return None
        if sync == "periodic":
            return Durability(Level.WEAKER, "dbm.dumb: key index in memory until sync()/close")
        return Durability(Level.MATCH, "dbm.dumb, index written and fsynced by sync()")

    def open(self) -> None:
        os.makedirs(self.path, exist_ok=True)
        self._file = os.path.join(self.path, "db")
        self._db: Any
        if self.backend() == "dbm.gnu":
            import dbm.gnu

            flags = "cs" if self.sync_mode == "always" else "cf"
            self._db = dbm.gnu.open(self._file, flags)  # noqa: SIM115 (held open)
        else:
            import dbm.dumb

            self._db = dbm.dumb.open(self._file, "c")  # noqa: SIM115 (held open)
        db = self._db
        self.put, self.delete = db.__setitem__, db.__delitem__
        self.get = db.get

    def sync(self) -> None:
        self._db.sync()
        if self.backend() == "dbm.dumb":
            fsync_paths(self._file + suffix for suffix in (".dat", ".dir"))
        else:
            fsync_paths([self._file])

    def close(self) -> None:
        self._db.close()
