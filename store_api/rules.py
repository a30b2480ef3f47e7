"""The contract's rules that every backend keeps, in one place (STORE_API.md).

Argument checks (keys, values, pages, names, durations), the expiry precedence
and the namespace fallback live here so that ``LogStore`` and ``PostgresStore``
cannot drift apart: each backend only decides how to store what these return.
"""

from __future__ import annotations

import math
import sys
from datetime import datetime, timedelta
from typing import Final

from store_api.options import Options

_FLOAT_MAX: Final = sys.float_info.max
#: The longest duration a ``timedelta`` can hold, in seconds.
_TIMEDELTA_MAX: Final = timedelta.max.total_seconds()


def refuse_key(key: object) -> None:
    """Raise the right error for a key that is not a non-empty ``str`` (rule 11)."""
    if not isinstance(key, str):
        raise TypeError(f"key must be str, not {type(key).__name__}")
    if not key:
        raise ValueError("key must not be empty")


def check_key(key: object) -> None:
    """``key`` must be a non-empty ``str`` (rule 11)."""
    if type(key) is not str or not key:
        refuse_key(key)


def as_bytes(value: object) -> bytes:
    """A private ``bytes`` copy of a bytes-like value; ``TypeError`` for anything else (rule 12)."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"value must be bytes, bytearray or memoryview, not {type(value).__name__}")


def check_page(limit: object, offset: object) -> None:
    """``limit`` and ``offset`` must be non-negative ints (rule 4)."""
    for name, value in (("limit", limit), ("offset", offset)):
        if type(value) is not int:
            raise TypeError(f"{name} must be int, not {type(value).__name__}")
        if value < 0:
            raise ValueError(f"{name} must not be negative, got {value}")


def check_affixes(prefix: object, suffix: object) -> None:
    """The ``prefix`` and ``suffix`` of ``list`` must be ``str``."""
    for name, value in (("prefix", prefix), ("suffix", suffix)):
        if type(value) is not str:
            raise TypeError(f"{name} must be str, not {type(value).__name__}")


def names(options: Options, database: object, table: object) -> tuple[str, str]:
    """The (database, table) a call addresses: empty names fall back to the options (rule 10)."""
    if type(database) is not str or type(table) is not str:
        for name, value in (("database", database), ("table", table)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, not {type(value).__name__}")
    assert isinstance(database, str) and isinstance(table, str)
    return database or options.database, table or options.table


def seconds(duration: object, name: str) -> float:
    """A ``timedelta`` or number of seconds (not ``bool``) as a finite float."""
    if isinstance(duration, timedelta):
        return duration.total_seconds()
    if isinstance(duration, float):
        value = duration
    elif isinstance(duration, int) and not isinstance(duration, bool):
        try:
            value = float(duration)
        except OverflowError:
            value = math.inf
    else:
        raise TypeError(f"{name} must be a timedelta or a number of seconds, not {duration!r}")
    if -_FLOAT_MAX <= value <= _FLOAT_MAX:  # False for NaN and infinities
        return value
    raise ValueError(f"{name} must be finite, not {duration!r}")


def lifetime(record_expiry: object, expiry: object, ttl: object) -> float | datetime | None:
    """The lifetime a write asks for, by the precedence ttl > expiry > record.expiry (rule 6).

    Seconds from now (a float, negative = already expired), an absolute time
    (a ``datetime``; a naive one means local time), or ``None`` for never.
    Zero or ``None`` means "not set" at each level. Bad types and non-finite
    numbers raise before anything is written.
    """
    ttl_seconds = None if ttl is None else seconds(ttl, "ttl")
    if expiry is not None and not isinstance(expiry, datetime):
        raise TypeError(f"expiry must be a datetime, not {type(expiry).__name__}")
    if type(record_expiry) is timedelta and not record_expiry:
        record_seconds = 0.0  # the default, timedelta(0): skip the general conversion
    else:
        record_seconds = seconds(record_expiry, "record.expiry")
    if ttl_seconds:
        return ttl_seconds
    if expiry is not None:
        return expiry
    if record_seconds:
        return record_seconds
    return None


def as_duration(lifetime_seconds: float) -> timedelta:
    """Seconds as a ``timedelta``; ``ValueError`` if no ``timedelta`` can hold them."""
    if abs(lifetime_seconds) >= _TIMEDELTA_MAX:
        raise ValueError(f"expiry is out of range: {lifetime_seconds} seconds")
    return timedelta(seconds=lifetime_seconds)
