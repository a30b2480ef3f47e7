"""The engine value of a record: a one-byte header, then optional parts, then the value.

Layout (all little-endian)::

    flags u8 | [expires_at f64 if flags & EXPIRES] | [meta_len u32, JSON if flags & META] | value

A record without metadata and without expiry, the common case, is stored as
``b"\\x00" + value``: no JSON work on write or read, one byte of overhead.

The absolute expiry is kept here as well as in the engine record: the engine
uses its copy to hide and compact expired records, and the adapter uses this one
to report the remaining lifetime of records that come out of a range scan,
which yields values but not expiries.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from typing import Any, Final

from engine import CorruptionError

PLAIN: Final = b"\x00"
EXPIRES: Final = 1
META: Final = 2

_F64: Final = struct.Struct("<d")
_U32: Final = struct.Struct("<I")
_EXPIRES_META_HEAD: Final = struct.Struct("<BdI")


def encode_metadata(metadata: object) -> bytes:
    """Metadata as compact ASCII JSON; ``TypeError`` for anything that does not round-trip.

    Accepted: a mapping with ``str`` keys whose values are ``None``, ``bool``, ``int``,
    finite ``float``, ``str``, lists or tuples (read back as lists) and nested
    mappings of the same. NaN and infinities are not JSON and are refused, as are
    non-``str`` keys at any depth (``json`` would silently turn them into strings).
    """
    if type(metadata) is not dict:
        if not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, not {type(metadata).__name__}")
        metadata = dict(metadata)
    try:
        text = _ENCODER.encode(metadata)
    except (TypeError, ValueError, RecursionError) as exc:
        raise TypeError(f"metadata is not JSON-serialisable: {exc}") from None
    _check_keys(metadata)
    return text.encode("ascii")


def decode_metadata(text: str) -> dict[str, Any]:
    """The metadata dict of JSON written by :func:`encode_metadata`."""
    metadata: dict[str, Any] = _DECODER.decode(text)
    return metadata


def _refuse(value: object) -> Any:
    """``json`` hook for objects it does not know: always refuse, naming the type."""
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


_CONTAINERS: Final = (dict, list, tuple)
#: One encoder for every call: ``json.dumps`` with options builds a new one each time.
_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), allow_nan=False, default=_refuse)
_DECODER: Final = json.JSONDecoder()


def _check_keys(value: dict[Any, Any] | list[Any] | tuple[Any, ...]) -> None:
    """Raise ``TypeError`` if any dict inside ``value`` has a non-``str`` key.

    Runs after a successful encode, so the only containers left are dicts, lists
    and tuples (and their subclasses), and there are no cycles.
    """
    if isinstance(value, dict):
        for key, item in value.items():
            if type(key) is not str and not isinstance(key, str):
                raise TypeError(f"metadata keys must be str, not {type(key).__name__}: {key!r}")
            if isinstance(item, _CONTAINERS):
                _check_keys(item)
    else:
        for item in value:
            if isinstance(item, _CONTAINERS):
                _check_keys(item)


def encode(value: bytes, meta_json: bytes | None, expires_at: float | None) -> bytes:
    """The engine value for ``value`` with optional metadata JSON and absolute expiry."""
    if meta_json is None:
        if expires_at is None:
            return PLAIN + value
        return bytes((EXPIRES,)) + _F64.pack(expires_at) + value
    if expires_at is None:
        return bytes((META,)) + _U32.pack(len(meta_json)) + meta_json + value
    return _EXPIRES_META_HEAD.pack(EXPIRES | META, expires_at, len(meta_json)) + meta_json + value


def decode(data: bytes) -> tuple[bytes, dict[str, Any], float | None]:
    """``(value, metadata, expires_at)`` of an engine value written by :func:`encode`."""
    flags = data[0]
    if not flags:
        return data[1:], {}, None
    if flags & ~(EXPIRES | META):
        raise CorruptionError(f"record value has unknown flags {flags:#x}")
    pos = 1
    expires_at: float | None = None
    metadata: dict[str, Any] = {}
    if flags & EXPIRES:
        expires_at = _F64.unpack_from(data, pos)[0]
        pos += _F64.size
    if flags & META:
        size = _U32.unpack_from(data, pos)[0]
        pos += _U32.size
        metadata = _DECODER.decode(data[pos : pos + size].decode("ascii"))
        pos += size
    return data[pos:], metadata, expires_at
