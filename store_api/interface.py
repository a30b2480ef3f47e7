"""``Store``: go-micro's store interface, rendered in Python (see STORE_API.md).

Go's functional options become keyword arguments; ``context.Context`` is dropped
(a call blocks until done); errors become exceptions (``NotFoundError`` for
``ErrNotFound``). Every backend subclasses ``Store`` and passes the conformance
suite in ``tests/store_api``.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Self

from store_api.options import Options
from store_api.record import Record


class Store(ABC):
    """A key-value store of ``Record`` values, namespaced by database and table."""

    @abstractmethod
    def init(self, **options: Any) -> None:
        """Merge ``options`` into the current ones; unspecified options keep their value.

        Stored data survives; a backend reopens whatever the change requires.
        """

    @abstractmethod
    def connect(self) -> None:
        """Make the store ready for use; calling it on a connected store does nothing."""

    @abstractmethod
    def options(self) -> Options:
        """The options in force."""

    @abstractmethod
    def read(
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
        """Records for ``key``.

        Exact (neither flag): exactly one record, or ``NotFoundError``. With
        ``prefix`` and/or ``suffix``, ``key`` is the prefix/suffix to match; the
        matches come back ascending by key, paginated by ``offset`` then ``limit``
        (0 = no limit), and may be ``[]``. ``Record.expiry`` is the remaining
        lifetime (``timedelta(0)`` for records that never expire).
        """

    @abstractmethod
    def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Insert or replace ``record`` (value, metadata and expiry all replaced).

        The lifetime is ``ttl`` if set, else the absolute ``expiry``, else
        ``record.expiry``; zero or ``None`` means not set, negative or past
        means already expired.
        """

    @abstractmethod
    def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""

    @abstractmethod
    def list(
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
    def disconnect(self) -> None:
        """Flush and release files; data stays. Calling it again does nothing."""

    @abstractmethod
    def __str__(self) -> str:
        """The backend's name: non-empty and stable."""

    def __enter__(self) -> Self:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.disconnect()
