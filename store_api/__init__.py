"""go-micro's ``Store`` interface over the seglog engine (contract: STORE_API.md).

>>> import tempfile
>>> from store_api import LogStore, Record
>>> with tempfile.TemporaryDirectory() as path, LogStore(path) as store:
...     store.write(Record("user/1", b"ada", {"age": 36}), ttl=60)
...     store.read("user/", prefix=True)[0].metadata
{'age': 36}
"""

from typing import TYPE_CHECKING, Any

from engine.errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    FailedError,
    LockedError,
    ReadOnlyError,
    StorageError,
)
from store_api.default import default_store
from store_api.errors import UnavailableError
from store_api.factory import new_store
from store_api.interface import Store
from store_api.logstore import LogStore
from store_api.options import Options
from store_api.paths import default_dir
from store_api.record import NotFoundError, Record

__all__ = [
    "ClosedError",
    "CorruptionError",
    "DiskFullError",
    "FailedError",
    "LockedError",
    "LogStore",
    "NotFoundError",
    "Options",
    "PostgresStore",
    "ReadOnlyError",
    "Record",
    "StorageError",
    "Store",
    "UnavailableError",
    "default_dir",
    "default_store",
    "new_store",
]

if TYPE_CHECKING:
    from store_api.postgres import PostgresStore


def __getattr__(name: str) -> Any:
    """``PostgresStore`` on first use, so that ``store_api`` works without psycopg installed."""
    if name == "PostgresStore":
        try:
            from store_api.postgres import PostgresStore
        except ImportError as exc:
            raise ImportError(
                f"PostgresStore needs psycopg 3 and psycopg-pool: pip install 'seglog[postgres]' "
                f"({exc})"
            ) from exc
        return PostgresStore
    raise AttributeError(f"module 'store_api' has no attribute {name!r}")
