"""The checks every write passes before it is queued or written: types, sizes, expiry.

Shared by ``Engine`` and ``Batch``, so a batch rejects exactly what a put
would, and before anything reaches the log. Bad input is a TypeError or a
ValueError that changes nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable


def as_bytes(value: object, what: str) -> bytes:
    """Bytes-like to bytes (a copy, so later mutation by the caller cannot reach the store)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{what} must be bytes-like, not {type(value).__name__}")


def as_limit(value: object) -> int | None:
    """A scan's ``limit``: None (no limit) or a non-negative int."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"limit must be an int or None, not {type(value).__name__}")
    if value < 0:
        raise ValueError(f"limit must not be negative, got {value}")
    return value


class WriteChecks:
    """Validates keys, values and expiries against one store's limits and clock.

    The hot paths test ``type(key) is bytes`` and the sizes inline, and call
    ``checked`` only when that quick test fails.
    """

    def __init__(self, max_key_size: int, max_value_size: int, clock: Callable[[], float]) -> None:
        self.max_key_size = max_key_size
        self.max_value_size = max_value_size
        self.clock = clock

    def key(self, key: object) -> bytes:
        """``key`` as bytes; TypeError or ValueError if it is not a usable key."""
        key = as_bytes(key, "key")
        if not key:
            raise ValueError("key must not be empty")
        if len(key) > self.max_key_size:
            raise ValueError(f"key is {len(key)} bytes; the maximum is {self.max_key_size}")
        return key

    def value(self, value: object) -> bytes:
        """``value`` as bytes; TypeError or ValueError if it is not a storable value."""
        value = as_bytes(value, "value")
        if len(value) > self.max_value_size:
            raise ValueError(f"value is {len(value)} bytes; the maximum is {self.max_value_size}")
        return value

    def checked(self, key: object, value: object) -> tuple[bytes, bytes]:
        """``(key, value)`` checked, as bytes."""
        return self.key(key), self.value(value)

    def expiry(self, ttl: object, expires_at: object) -> float:
        """The absolute expiry of a write; ``ttl`` wins over ``expires_at``."""
        given, what = (ttl, "ttl") if ttl is not None else (expires_at, "expires_at")
        if isinstance(given, bool) or not isinstance(given, int | float):
            raise TypeError(f"{what} must be a number of seconds, not {type(given).__name__}")
        if not math.isfinite(given):
            raise ValueError(f"{what} must be finite, not {given}")
        expires = self.clock() + given if ttl is not None else float(given)
        # 0.0 means "never" on disk; a time at or before the epoch has simply passed.
        return max(expires, math.ulp(0.0))
