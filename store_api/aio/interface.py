"""``AsyncStore``: the ``Store`` interface for asyncio code, every method a coroutine.

The rules of STORE_API.md hold unchanged; only the calling convention differs:
``await store.read(key)`` instead of ``store.read(key)``, and ``async with``
connects on entry and disconnects on exit. ``str(store)`` stays synchronous
(it does no I/O).
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from store_api.options import Options
from store_api.record import Record


class AsyncStore(ABC):
    """A key-value store of ``Record`` values for asyncio; see ``store_api.Store`` for each rule."""

    @abstractmethod
    async def init(self, **options: Any) -> None:
        """Merge ``options`` into the current ones; stored data survives (``Store.init``)."""

    @abstractmethod
    async def connect(self) -> None:
        """Make the store ready; calling it on a connected store does nothing."""

    @abstractmethod
    async def options(self) -> Options:
        """The options in force."""

    @abstractmethod
    async def read(
        self,
        key: str,
        *,
        database: str = "",
        table: str = "",
        prefix: bool = False,
        suffix: bool = False,
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[Record]:
        """One record by exact key (else ``NotFoundError``), or the matches of a prefix/suffix."""

    @abstractmethod
    async def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Insert or replace ``record``; lifetime by ``ttl`` > ``expiry`` > ``record.expiry``."""

    @abstractmethod
    async def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""

    @abstractmethod
    async def list(
        self,
        *,
        database: str = "",
        table: str = "",
        prefix: str = "",
        suffix: str = "",
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[str]:
        """Live keys matching ``prefix`` and ``suffix``, ascending, paginated like ``read``."""

    @abstractmethod
    async def disconnect(self) -> None:
        """Flush and release what the store holds; data stays. Calling it again does nothing."""

    @abstractmethod
    def __str__(self) -> str:
        """The backend's name: non-empty and stable."""

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.disconnect()
