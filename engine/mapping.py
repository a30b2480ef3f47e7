"""``KeyMapping``: the subscript and iteration half of Python's mapping protocol for ``Engine``.

``db[key]``, ``db[key] = value``, ``del db[key]`` and ``iter(db)`` over the
engine's own bytes API, so code that speaks ``dict`` can use a store as one
where that fits: keys and values are bytes-like, as for ``put``/``get``.

- ``db[key]`` is ``get`` raising ``KeyError`` for a missing or expired key.
- ``db[key] = value`` is ``put`` with no expiry (use ``put(..., ttl=)`` for one).
- ``del db[key]`` raises ``KeyError`` for a missing or expired key, as ``dict``
  does (``delete`` itself stays quiet). The check and the delete are two steps:
  two threads deleting one key at once may both return.
- ``iter(db)`` yields the live keys in ascending byte order, as the store was
  when iteration began (``scan_keys``): writing during the loop is safe.

``Engine`` is deliberately not a ``collections.abc.MutableMapping``: that ABC
would add ``__eq__`` over the whole contents, ``popitem``, ``clear`` and a
``get`` with a default, none of which fit a store on disk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol


class _Store(Protocol):
    """The engine methods ``KeyMapping`` is written over."""

    def get(self, key: bytes) -> bytes | None: ...

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...

    def scan_keys(self) -> Iterator[bytes]: ...

    def __contains__(self, key: object) -> bool: ...


class KeyMapping:
    """``[]``, ``del`` and iteration in key order for a class with ``get``/``put``/``delete``."""

    def __getitem__(self: _Store, key: bytes) -> bytes:
        """The value of ``key``; ``KeyError`` if it is missing or expired."""
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self: _Store, key: bytes, value: bytes) -> None:
        """Store ``value`` under ``key`` without expiry (``put``)."""
        self.put(key, value)

    def __delitem__(self: _Store, key: bytes) -> None:
        """Delete ``key``; ``KeyError`` if it is missing or expired, as ``dict`` does."""
        if key in self:
            self.delete(key)
        elif isinstance(key, bytes | bytearray | memoryview) and key:
            raise KeyError(key)
        else:  # ``in`` answers False for an empty key or another type; ``delete`` names the error
            self.delete(key)

    def __iter__(self: _Store) -> Iterator[bytes]:
        """The live keys in ascending byte order, as of the call."""
        return self.scan_keys()
