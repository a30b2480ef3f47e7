"""The asyncio forms of ``store_api`` (contract: STORE_API.md).

>>> import asyncio, tempfile
>>> from store_api import Record
>>> from store_api.aio import AsyncLogStore
>>> async def main(path: str) -> bytes:
...     async with AsyncLogStore(path, sync="always") as store:
...         await store.write(Record("user/1", b"ada"))
...         return (await store.read("user/1"))[0].value
>>> with tempfile.TemporaryDirectory() as path:
...     asyncio.run(main(path))
b'ada'
"""

from typing import TYPE_CHECKING, Any

from store_api.aio.interface import AsyncStore
from store_api.aio.logstore import AsyncLogStore

__all__ = ["AsyncLogStore", "AsyncPostgresStore", "AsyncStore"]

if TYPE_CHECKING:
    from store_api.aio.postgres import AsyncPostgresStore


def __getattr__(name: str) -> Any:
    """``AsyncPostgresStore`` on first use, so that ``store_api.aio`` works without psycopg."""
    if name == "AsyncPostgresStore":
        try:
            from store_api.aio.postgres import AsyncPostgresStore
        except ImportError as exc:
            raise ImportError(
                f"AsyncPostgresStore needs psycopg 3 and psycopg-pool: "
                f"pip install 'seglog[postgres]' ({exc})"
            ) from exc
        return AsyncPostgresStore
    raise AttributeError(f"module 'store_api.aio' has no attribute {name!r}")
