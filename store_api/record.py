"""``Record``, the unit a ``Store`` reads and writes, and ``NotFoundError``."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

#: The ``expiry`` of a record that never expires (the engine's on-disk ``NO_EXPIRY`` is 0.0).
FOREVER: Final = timedelta(0)


@dataclass(init=False, slots=True)
class Record:
    """A key, its value, free-form metadata and an expiry (go-micro's ``store.Record``).

    ``expiry`` is a duration: on write, how long the record should live
    (``timedelta(0)`` = forever, negative = already expired); on read, how long it
    has left. A number of seconds is accepted and normalised to ``timedelta``.
    Construction never validates the key or value, so a bad record can be built
    and handed to ``write``, which rejects it before storing anything.

    >>> Record("user/1", b"ada", {"age": 36}, expiry=60).expiry
    datetime.timedelta(seconds=60)
    """

    key: str
    value: bytes
    metadata: dict[str, Any]
    expiry: timedelta

    def __init__(
        self,
        key: str,
        value: bytes,
        metadata: dict[str, Any] | None = None,
        expiry: timedelta | float = FOREVER,
    ) -> None:
        self.key = key
        self.value = value
        self.metadata = {} if metadata is None else metadata
        # ``timedelta`` (the default included) needs no conversion: skip the call.
        self.expiry = expiry if type(expiry) is timedelta else _as_timedelta(expiry)


def _as_timedelta(expiry: object) -> Any:
    """A finite int or float of seconds as ``timedelta``; anything else unchanged.

    Leaving odd values unchanged (rather than raising here) lets ``write`` report
    them with the rest of its input checks.
    """
    if (
        (type(expiry) is int or type(expiry) is float)
        and math.isfinite(expiry)
        and abs(expiry) < timedelta.max.total_seconds()
    ):
        return timedelta(seconds=expiry)
    return expiry


class NotFoundError(KeyError):
    """An exact ``read`` found no live record (missing, deleted or expired).

    A ``KeyError`` so that ``except KeyError`` works as it does for a dict; the
    key and namespace are available as attributes.
    """

    def __init__(self, key: str, database: str = "", table: str = "") -> None:
        super().__init__(key)
        self.key = key
        self.database = database
        self.table = table

    def __str__(self) -> str:
        where = f" in {self.database!r}/{self.table!r}" if self.database or self.table else ""
        return f"not found: {self.key!r}{where}"
