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

from store_api.aio.interface import AsyncStore
from store_api.aio.logstore import AsyncLogStore

__all__ = ["AsyncLogStore", "AsyncStore"]
