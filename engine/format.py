"""The bytes on disk: file headers and record frames (see docs/FORMAT.md). Pure functions.

A record is framed as::

    crc32c u32 | type u8 | seq u64 | expires_at f64 | key_len u32 | value_len u32 | key | value

all little-endian. The CRC covers every byte after itself, so an all-zero tail
never parses as a run of valid empty records, and type 0 is reserved as invalid.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

from crc32c import crc32c

from engine.errors import CorruptionError

#: Every data file starts with 8 bytes of magic, a u16 format version and a u16 file kind.
MAGIC: Final = b"SEGLOG\x00\x1a"
VERSION: Final = 1
FILE_HEADER: Final = struct.Struct("<8sHH4x")
FILE_HEADER_SIZE: Final = FILE_HEADER.size


class FileKind(IntEnum):
    """What a data file holds; stored in its header so files cannot be mixed up."""

    SEGMENT = 1
    HINT = 2


class RecordType(IntEnum):
    """Record types; 0 is reserved as invalid so zero-filled bytes never decode."""

    PUT = 1
    DELETE = 2
    BATCH_PUT = 3
    BATCH_DELETE = 4
    BATCH_COMMIT = 5


#: The record types as plain ints, for the hot loops: an IntEnum compares slower.
PUT: Final = int(RecordType.PUT)
DELETE: Final = int(RecordType.DELETE)
BATCH_PUT: Final = int(RecordType.BATCH_PUT)
BATCH_DELETE: Final = int(RecordType.BATCH_DELETE)
BATCH_COMMIT: Final = int(RecordType.BATCH_COMMIT)


#: The header fields after the CRC, and the whole record header including the CRC.
_BODY: Final = struct.Struct("<BQdII")
_CRC: Final = struct.Struct("<I")
RECORD_HEADER: Final = struct.Struct("<IBQdII")
HEADER_SIZE: Final = RECORD_HEADER.size
#: Bound struct methods, for the engine's inlined put and get hot paths.
pack_body: Final = _BODY.pack
pack_crc: Final = _CRC.pack

#: Hard format limits; configured maxima may be lower, never higher.
MAX_KEY_SIZE: Final = 1 << 20
MAX_VALUE_SIZE: Final = 1 << 30

#: The ``expires_at`` of a record that never expires.
NO_EXPIRY: Final = 0.0
#: A batch commit marker's value: the number of records in the batch.
BATCH_COUNT: Final = struct.Struct("<I")


@dataclass(frozen=True, slots=True)
class DecodedRecord:
    """One record frame decoded, value included; ``expires_at`` is NO_EXPIRY if it never expires.

    Not to be confused with ``store_api.Record`` (the Store API's record) or
    ``engine.reader.ScannedRecord`` (where a record is, and its header, without
    the value: what the reader yields).
    """

    type: RecordType
    seq: int
    expires_at: float
    key: bytes
    value: bytes


def encode_file_header(kind: FileKind) -> bytes:
    """The fixed-size header that opens every data file."""
    return FILE_HEADER.pack(MAGIC, VERSION, kind)


def check_file_header(data: bytes, kind: FileKind, name: str) -> None:
    """Raise CorruptionError unless ``data`` starts with a header of ``kind`` we can read."""
    if len(data) < FILE_HEADER_SIZE:
        raise CorruptionError(f"{name}: file header is short ({len(data)} bytes)")
    magic, version, found = FILE_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise CorruptionError(f"{name}: not a seglog file (bad magic)")
    if version != VERSION:
        raise CorruptionError(f"{name}: unsupported format version {version}")
    if found != kind:
        raise CorruptionError(f"{name}: file kind {found}, expected {kind.name}")


def encode_record(rtype: int, seq: int, expires_at: float, key: bytes, value: bytes = b"") -> bytes:
    """Frame one record: header, key and value, with the CRC over all of it but itself."""
    body = _BODY.pack(rtype, seq, expires_at, len(key), len(value)) + key + value
    return _CRC.pack(crc32c(body)) + body


def record_size(key_len: int, value_len: int) -> int:
    """Bytes a record with these key and value lengths takes on disk."""
    return HEADER_SIZE + key_len + value_len


def decode_value(data: bytes, key: bytes, where: str) -> bytes:
    """Check one whole record read back for ``key`` and return its value.

    Raises CorruptionError if the CRC, the type or the key do not match: a read
    never returns bytes that were not written for this key.
    """
    if len(data) < HEADER_SIZE:
        raise CorruptionError(f"{where}: record is short ({len(data)} bytes)")
    crc, rtype, _seq, _exp, klen, _vlen = RECORD_HEADER.unpack_from(data, 0)
    if crc != crc32c(memoryview(data)[4:]):
        raise CorruptionError(f"{where}: record CRC mismatch")
    end = HEADER_SIZE + klen
    if data[HEADER_SIZE:end] != key or rtype not in (RecordType.PUT, RecordType.BATCH_PUT):
        raise CorruptionError(f"{where}: record does not hold the expected key")
    return data[end:]


def parse_record(
    data: bytes | memoryview, offset: int, max_key: int = MAX_KEY_SIZE
) -> tuple[int, int, float, int, int] | None:
    """Validate the record at ``offset``: ``(type, seq, expires_at, key_len, size)`` or None.

    Lengths are checked against the bytes available and the format limits before
    anything is sliced, so garbage never allocates, overflows or raises. The key
    starts at ``offset + HEADER_SIZE``; the value follows it.
    """
    if offset < 0 or len(data) - offset < HEADER_SIZE:
        return None
    crc, rtype, seq, expires_at, klen, vlen = RECORD_HEADER.unpack_from(data, offset)
    if rtype not in _VALID_TYPES or klen > max_key or vlen > MAX_VALUE_SIZE:
        return None
    size = HEADER_SIZE + klen + vlen
    end = offset + size
    if end > len(data) or crc != crc32c(data[offset + 4 : end]):
        return None
    if not expires_at >= 0.0 or math.isinf(expires_at):
        return None
    return rtype, seq, expires_at, klen, size


def decode_record_at(data: bytes | memoryview, offset: int) -> tuple[DecodedRecord, int] | None:
    """Decode the whole record at ``offset`` with its size, or None if it is invalid."""
    parsed = parse_record(data, offset)
    if parsed is None:
        return None
    rtype, seq, expires_at, klen, size = parsed
    key_end = offset + HEADER_SIZE + klen
    key = bytes(data[offset + HEADER_SIZE : key_end])
    value = bytes(data[key_end : offset + size])
    return DecodedRecord(RecordType(rtype), seq, expires_at, key, value), size


_VALID_TYPES: Final = frozenset(int(t) for t in RecordType)
