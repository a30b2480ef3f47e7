"""The standard library's ``dbm`` interface over a seglog store, so ``shelve`` runs on seglog.

>>> import os, shelve, tempfile
>>> from engine import dbm as seglog_dbm
>>> path = os.path.join(tempfile.mkdtemp(), "shelf")
>>> with shelve.Shelf(seglog_dbm.open(path, "c")) as shelf:
...     shelf["user"] = {"name": "ada", "langs": ["python"]}
>>> with shelve.Shelf(seglog_dbm.open(path, "r")) as shelf:
...     shelf["user"]["langs"]
['python']

``open(file, flag="r", mode=0o666)`` returns a ``Database``: a mutable mapping
of bytes to bytes with the methods ``dbm`` objects have (``[]``, ``del``,
``in``, ``len``, iteration, ``keys``, ``get``, ``setdefault``, ``sync``,
``close``, ``with``). Keys and values may be given as ``str`` (stored as UTF-8)
or bytes-like, and always come back as ``bytes``, as with ``dbm``.

Where seglog differs from ``dbm.dumb`` and ``dbm.gnu`` (docs/RECIPES.md):

- ``file`` names a directory (a seglog store), not a file.
- ``mode`` applies to that directory, with an execute bit added wherever a read
  bit is set (``0o600`` gives ``0o700``): whoever cannot enter the directory
  cannot read any file in it, so it guards the whole store.
- An empty key is refused with ``ValueError`` (the engine has no empty key).
- ``"r"`` takes the store for this process alone, as the other flags do, and
  recovery may cut a torn tail on opening: a second opener gets ``error``.
- Writes are durable as the engine's ``sync`` mode says (default
  ``"periodic"``: a write that returned survives a crash of the process);
  extra keyword arguments of ``open`` go to ``Engine.open``.
"""

from __future__ import annotations

import dbm
import os
from collections.abc import Iterator, MutableMapping
from types import TracebackType
from typing import Any, Final, Literal

from engine.engine import Engine
from engine.errors import StorageError
from engine.segment import LOCK_FILE

Flag = Literal["r", "w", "c", "n"]
_FLAGS: Final = ("r", "w", "c", "n")


#: The exception class inside the standard ``dbm.error`` tuple (``(dbm.error[0], OSError)``).
_DBM_ERROR: Final[type[Exception]] = dbm.error[0]


class error(_DBM_ERROR, OSError):  # type: ignore[misc,valid-type]
    """What ``dbm`` modules raise for database errors; ``except dbm.error`` catches it."""


class Database(MutableMapping[bytes, bytes]):
    """An open seglog store seen as a ``dbm`` database. Make it with ``open``."""

    def __init__(self, db: Engine, *, writable: bool) -> None:
        self._db: Engine | None = db
        self._writable = writable

    def _engine(self) -> Engine:
        db = self._db
        if db is None:
            raise error("DBM object has already been closed")
        return db

    def _writer(self) -> Engine:
        db = self._engine()
        if not self._writable:
            raise error("The database is opened for reading only")
        return db

    def __getitem__(self, key: str | bytes) -> bytes:
        value = self._engine().get(_as_key(key))
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: str | bytes, value: str | bytes) -> None:
        self._writer().put(_as_key(key), _as_bytes(value, "values"))

    def __delitem__(self, key: str | bytes) -> None:
        db = self._writer()
        encoded = _as_key(key)
        if encoded not in db:
            raise KeyError(key)
        db.delete(encoded)

    def __contains__(self, key: object) -> bool:
        db = self._engine()
        if isinstance(key, str):
            key = key.encode()
        return key in db

    def __iter__(self) -> Iterator[bytes]:
        """Keys in ascending byte order, as of the call: writing meanwhile is safe."""
        return iter(self._engine())

    def __len__(self) -> int:
        return len(self._engine())

    def keys(self) -> list[bytes]:  # type: ignore[override]  # a list, as dbm modules return
        """Every key, in ascending byte order."""
        return list(self._engine().scan_keys())

    def get(self, key: str | bytes, default: Any = None) -> Any:
        """The value of ``key``, else ``default``."""
        value = self._engine().get(_as_key(key))
        return default if value is None else value

    def setdefault(  # type: ignore[override]  # returns the default as given, as dbm does
        self, key: str | bytes, default: str | bytes = b""
    ) -> str | bytes:
        """The value of ``key``; if missing, store ``default`` and return it as given (as dbm)."""
        value: bytes | None = self._engine().get(_as_key(key))
        if value is not None:
            return value
        self[key] = default
        return default

    def clear(self) -> None:
        """Delete every key in one atomic batch (not one at a time, as ``MutableMapping``'s)."""
        _clear(self._writer())

    def sync(self) -> None:
        """Make every write so far durable on disk (fsync)."""
        self._engine().sync()

    def close(self) -> None:
        """Flush and release the store; closing twice does nothing."""
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._db is None else self._db.path
        return f"<engine.dbm.Database {state} {'rw' if self._writable else 'r'}>"


def open(
    file: str | os.PathLike[str], flag: Flag = "r", mode: int = 0o666, **options: Any
) -> Database:
    """Open the seglog store in directory ``file`` as a ``dbm`` database.

    ``flag``: ``"r"`` read-only and ``"w"`` read-write, both on an existing
    store; ``"c"`` read-write, creating the store if missing; ``"n"`` read-write
    on a new, empty store (an existing one is emptied). ``mode`` sets the
    permissions of a directory this creates (see the module docstring).
    Raises ``error`` for a missing store under ``"r"``/``"w"``, a path that is
    not a seglog store, or a store another process or handle holds.
    """
    if flag not in _FLAGS:
        raise ValueError(f"flag must be one of 'r', 'w', 'c' or 'n', not {flag!r}")
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"mode must be an int, not {type(mode).__name__}")
    path = os.fspath(file)
    if not _is_store(path):
        if flag in ("r", "w"):
            raise error(f"{path}: no seglog store here; use the 'c' or 'n' flag to create one")
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            raise error(f"{path}: exists and is not a seglog store")
        os.makedirs(path, mode | (mode & 0o444) >> 2, exist_ok=True)
    try:
        db = Engine.open(path, **options)
    except StorageError as exc:
        raise error(f"cannot open {path}: {exc}") from exc
    if flag == "n":
        try:
            _clear(db)
            db.compact()
        except BaseException:
            db.close()
            raise
    return Database(db, writable=flag != "r")


def _is_store(path: str) -> bool:
    """Whether ``path`` is a seglog store directory (every opened store has a lock file)."""
    return os.path.isfile(os.path.join(path, LOCK_FILE))


def _clear(db: Engine) -> None:
    """Delete every key of ``db`` in one batch: all or nothing, also across a crash."""
    with db.batch() as batch:
        for key in db.scan_keys():
            batch.delete(key)


def _as_key(key: object) -> bytes:
    """A key as the engine stores it; a clear error for an empty key."""
    encoded = _as_bytes(key, "keys")
    if not encoded:
        raise ValueError("seglog keys must not be empty")
    return encoded


def _as_bytes(data: object, what: str) -> bytes:
    """``str`` as UTF-8, bytes-like as bytes; ``TypeError`` otherwise, as ``dbm`` does."""
    if isinstance(data, str):
        return data.encode()
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise TypeError(f"{what} must be bytes or strings, not {type(data).__name__}")
