"""The bytes on disk: file headers and record frames (see docs/FORMAT.md). Pure functions.

A record is its CRC32C, a tag byte, then fields whose widths the tag gives::

    version 2: crc u32 | tag u8 | seq u32/u64 | key_len u8/u32 | value_len u8/u16/u32
               | expires_at f64 (only if set) | key | value
    version 1: crc u32 | type u8 | seq u64 | expires_at f64 | key_len u32 | value_len u32
               | key | value

all little-endian. The tag's low three bits are the record type; a version-1
record's tag is its type alone, so one table (``LAYOUTS``) reads both. The CRC
covers every byte after itself, so an all-zero tail never parses as a run of
valid empty records, and type 0 is reserved as invalid.

The widths come from the tag rather than from LEB128 varints: a varint costs a
Python loop per field per record, about 7x the header's one ``unpack_from``
(docs/DESIGN-NOTES.md, "Format version 2").
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Final

from crc32c import crc32c

from engine.errors import CorruptionError

#: Every data file starts with 8 bytes of magic, a u16 format version and a u16 file kind.
MAGIC: Final = b"SEGLOG\x00\x1a"
#: The version seglog writes segments in; ``VERSIONS`` are those it reads.
VERSION: Final = 2
VERSIONS: Final = frozenset({1, 2})
#: Hint files (``engine.hints``, ``engine.loghints``) did not change in version 2.
HINT_VERSION: Final = 1
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


_CRC: Final = struct.Struct("<I")
_EXPIRY: Final = struct.Struct("<d")
#: Bound struct methods, for the engine's inlined put and get hot paths.
pack_crc: Final = _CRC.pack
unpack_expiry: Final = _EXPIRY.unpack_from

#: The tag's bits: the type, then (version 2 only) which fields are wide or present.
TYPE_MASK: Final = 0x07
HAS_EXPIRY: Final = 0x08
WIDE_SEQ: Final = 0x10
WIDE_KEY_LEN: Final = 0x20
#: Bits 6-7 give the value length's width; zero there marks a version-1 record.
VALUE_LEN_U8: Final = 0x40
VALUE_LEN_U16: Final = 0x80
VALUE_LEN_U32: Final = 0xC0

#: How to read a record's header, by its tag: ``(unpack_from, header_size, expiry_at)``.
#: ``unpack_from(data, offset)`` gives ``(crc, tag, seq, key_len, value_len)``;
#: ``expiry_at`` is where the f64 expiry sits from the record's start, 0 if it has none.
Layout = tuple[Callable[..., tuple[Any, ...]], int, int]
#: Header sizes: the smallest (version 2, narrow fields, no expiry) and the largest.
MIN_HEADER_SIZE: Final = 11
MAX_HEADER_SIZE: Final = 29

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


def encode_file_header(kind: FileKind, version: int | None = None) -> bytes:
    """The fixed-size header that opens every data file: segments in ``VERSION`` by default.

    ``version`` is for tests and tools that build a store as an older seglog did.
    """
    if version is None:
        version = VERSION if kind == FileKind.SEGMENT else HINT_VERSION
    return FILE_HEADER.pack(MAGIC, version, kind)


def check_file_header(data: bytes, kind: FileKind, name: str) -> int:
    """The format version of a file that opens with a header of ``kind`` we can read.

    Raises CorruptionError for anything else.
    """
    if len(data) < FILE_HEADER_SIZE:
        raise CorruptionError(f"{name}: file header is short ({len(data)} bytes)")
    magic, version, found = FILE_HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise CorruptionError(f"{name}: not a seglog file (bad magic)")
    if found != kind:
        raise CorruptionError(f"{name}: file kind {found}, expected {kind.name}")
    if version not in (VERSIONS if kind == FileKind.SEGMENT else (HINT_VERSION,)):
        raise CorruptionError(f"{name}: unsupported format version {version}")
    return int(version)


def _tag(rtype: int, seq: int, expires_at: float, key_len: int, value_len: int) -> int:
    """The version-2 tag of a record with these fields: each as narrow as it fits."""
    tag = rtype
    if value_len <= 0xFF:
        tag |= VALUE_LEN_U8
    elif value_len <= 0xFFFF:
        tag |= VALUE_LEN_U16
    else:
        tag |= VALUE_LEN_U32
    if seq > 0xFFFFFFFF:
        tag |= WIDE_SEQ
    if key_len > 0xFF:
        tag |= WIDE_KEY_LEN
    if expires_at != NO_EXPIRY:
        tag |= HAS_EXPIRY
    return tag


def pack_head(rtype: int, seq: int, expires_at: float, key_len: int, value_len: int) -> bytes:
    """A version-2 record's header after its CRC: the tag and its fields."""
    tag = _tag(rtype, seq, expires_at, key_len, value_len)
    if tag & HAS_EXPIRY:
        return _PACKERS[tag](tag, seq, key_len, value_len, expires_at)
    return _PACKERS[tag](tag, seq, key_len, value_len)


#: The tag flags of the write hot paths' common header (``Engine.put`` and ``delete``
#: inline it): a sequence number under ``SHORT_SEQ_LIMIT``, key and value lengths
#: under ``SHORT_LIMIT``, no expiry.
SHORT: Final = VALUE_LEN_U8
SHORT_LIMIT: Final = 0x100
SHORT_SEQ_LIMIT: Final = 0x100000000


def encode_record(
    rtype: int, seq: int, expires_at: float, key: bytes, value: bytes = b"", version: int = VERSION
) -> bytes:
    """Frame one record: header, key and value, with the CRC over all of it but itself.

    ``version=1`` frames the old layout, for tests and tools that build old stores.
    """
    if version == 1:
        body = _V1_BODY.pack(rtype, seq, expires_at, len(key), len(value)) + key + value
    else:
        body = pack_head(rtype, seq, expires_at, len(key), len(value)) + key + value
    return _CRC.pack(crc32c(body)) + body


def header_size(data: bytes | memoryview, offset: int = 0) -> int:
    """The header size of the record at ``offset`` by its tag; 0 if the tag is invalid."""
    return KEY_AT[data[offset + 4]] if len(data) - offset > 4 else 0


def decode_value(data: bytes, key: bytes, where: str) -> bytes:
    """Check one whole record read back for ``key`` and return its value.

    Raises CorruptionError if the CRC, the type or the key do not match: a read
    never returns bytes that were not written for this key.
    """
    if len(data) < MIN_HEADER_SIZE:
        raise CorruptionError(f"{where}: record is short ({len(data)} bytes)")
    if _CRC.unpack_from(data)[0] != crc32c(memoryview(data)[4:]):
        raise CorruptionError(f"{where}: record CRC mismatch")
    parsed = _parse_header(data, 0, MAX_KEY_SIZE)  # the CRC, checked above, is not checked again
    if parsed is None or parsed[6] != len(data):
        raise CorruptionError(f"{where}: record header is damaged")
    _crc, rtype, _seq, _expires, head, klen, _size = parsed
    end = head + klen
    if data[head:end] != key or rtype not in (PUT, BATCH_PUT):
        raise CorruptionError(f"{where}: record does not hold the expected key")
    return data[end:]


def parse_record(
    data: bytes | memoryview, offset: int, max_key: int = MAX_KEY_SIZE
) -> tuple[int, int, float, int, int, int] | None:
    """Validate the record at ``offset``: ``(type, seq, expires_at, head, key_len, size)`` or None.

    ``head`` is the header's size: the key starts at ``offset + head`` and the
    value follows it. Lengths are checked against the bytes available and the
    format limits before anything is sliced, so garbage never allocates,
    overflows or raises.
    """
    parsed = _parse_header(data, offset, max_key)
    if parsed is None or parsed[0] != crc32c(data[offset + 4 : offset + parsed[6]]):
        return None
    return parsed[1:]


def _parse_header(
    data: bytes | memoryview, offset: int, max_key: int
) -> tuple[int, int, int, float, int, int, int] | None:
    """``parse_record``'s checks but the CRC's; its tuple with the stored CRC in front."""
    if offset < 0 or len(data) - offset < MIN_HEADER_SIZE:
        return None
    layout = LAYOUTS[data[offset + 4]]
    if layout is None:
        return None
    unpack, head, expiry_at = layout
    if len(data) - offset < head:
        return None
    crc, tag, seq, klen, vlen = unpack(data, offset)
    if klen > max_key or vlen > MAX_VALUE_SIZE:
        return None
    size = head + klen + vlen
    if offset + size > len(data):
        return None
    expires_at = unpack_expiry(data, offset + expiry_at)[0] if expiry_at else NO_EXPIRY
    if not expires_at >= 0.0 or math.isinf(expires_at):
        return None
    return crc, tag & TYPE_MASK, seq, expires_at, head, klen, size


def decode_record_at(data: bytes | memoryview, offset: int) -> tuple[DecodedRecord, int] | None:
    """Decode the whole record at ``offset`` with its size, or None if it is invalid."""
    parsed = parse_record(data, offset)
    if parsed is None:
        return None
    rtype, seq, expires_at, head, klen, size = parsed
    key_end = offset + head + klen
    key = bytes(data[offset + head : key_end])
    value = bytes(data[key_end : offset + size])
    return DecodedRecord(RecordType(rtype), seq, expires_at, key, value), size


#: Version 1's header after the CRC, and the reader's view of it (expiry skipped).
_V1_BODY: Final = struct.Struct("<BQdII")
_V1_READ: Final = struct.Struct("<IBQ8xII")
_V1_EXPIRY_AT: Final = 13
_VALUE_WIDTHS: Final = {VALUE_LEN_U8: "B", VALUE_LEN_U16: "H", VALUE_LEN_U32: "I"}


def _v2_fields(tag: int) -> str:
    seq = "Q" if tag & WIDE_SEQ else "I"
    key_len = "I" if tag & WIDE_KEY_LEN else "B"
    return seq + key_len + _VALUE_WIDTHS[tag & VALUE_LEN_U32]


def _layouts() -> tuple[tuple[Layout | None, ...], dict[int, Callable[..., bytes]]]:
    """Every valid tag's layout, and version 2's packers (tag and fields, after the CRC)."""
    layouts: list[Layout | None] = [None] * 256
    packers: dict[int, Callable[..., bytes]] = {}
    for rtype in RecordType:
        layouts[rtype] = (_V1_READ.unpack_from, _V1_READ.size, _V1_EXPIRY_AT)
        for flags in range(0, 0x100, 0x08):
            tag = rtype | flags
            if not tag & VALUE_LEN_U32:
                continue
            fields = _v2_fields(tag)
            expiry = "d" if tag & HAS_EXPIRY else ""
            reader = struct.Struct("<IB" + fields)
            head = reader.size + len(expiry) * 8
            layouts[tag] = (reader.unpack_from, head, head - 8 if expiry else 0)
            packers[tag] = struct.Struct("<B" + fields + expiry).pack
    return tuple(layouts), packers


LAYOUTS, _PACKERS = _layouts()
#: Header size by tag (0 for an invalid tag): where the key starts, for the read hot paths.
KEY_AT: Final = bytes(layout[1] if layout else 0 for layout in LAYOUTS)
#: The packer of a ``SHORT`` header after the CRC: ``(type | SHORT, seq, key_len, value_len)``.
pack_short: Final = _PACKERS[PUT | SHORT]
