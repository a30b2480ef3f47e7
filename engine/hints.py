"""Hint files: a compacted segment's index entries without its values, so reopen skips them.

Compaction writes ``0000000003.hint`` beside ``0000000003.cseg``. Entry ``i``
describes the segment's ``i``-th record, by its sequence number, its key and
its ``ref``, ``offset << 32 | size`` (a compacted segment stays under 4 GiB):
the record's location but for the segment id, which recovery ORs in with one
C-level call per entry. Columns rather than rows: each decodes with one C call
and no Python step per field. Layout, little-endian, after the 16-byte file
header of kind HINT::

    count u64 | keys_bytes u64 | deletes u64 | expiring u64 | segment_bytes u64
    seq u64[count] | ref u64[count] | key_len u32[count]
    delete_index u64[deletes] | expiring_index u64[expiring] | expires_at f64[expiring]
    keys (keys_bytes bytes, concatenated) | crc32c u32 of every byte before it

Deletes and expiries are sparse (most records are plain puts). A hint is all or
nothing: missing, short, corrupt or not matching its segment, recovery scans
the segment instead and gets the same index.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import os
import re
import struct
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

from crc32c import crc32c

from engine.errors import CorruptionError
from engine.format import (
    DELETE,
    FILE_HEADER_SIZE,
    MAX_KEY_SIZE,
    NO_EXPIRY,
    PUT,
    FileKind,
    check_file_header,
    encode_file_header,
)
from engine.fs import FileSystem, write_all
from engine.location import SIZE_BITS, SIZE_MASK
from engine.reader import ScannedRecord
from engine.segment import COMPACTED_BASE, check_segment_header, segment_name

log = logging.getLogger("seglog.compaction")

HINT_SUFFIX: Final = ".hint"
_HINT_NAME: Final = re.compile(r"^(\d{10})\.hint$")
_COUNTS: Final = struct.Struct("<5Q")
_CRC: Final = struct.Struct("<I")
#: Bytes a hint takes besides its entries: file header, counts and CRC.
HINT_OVERHEAD: Final = FILE_HEADER_SIZE + _COUNTS.size + _CRC.size
_SWAP: Final = sys.byteorder != "little"
_FIRST: Final = operator.itemgetter(0)
#: A compacted segment is cut before it reaches this size, so that offsets fit a ref.
MAX_SEGMENT_BYTES: Final = 1 << SIZE_BITS


def hint_name(segment_id: int) -> str:
    """The hint file of compacted segment ``segment_id``: its number with ``.hint``."""
    return f"{segment_id - COMPACTED_BASE:010d}{HINT_SUFFIX}"


def parse_hint_name(name: str) -> int | None:
    """The id of the compacted segment that hint file ``name`` describes, or None."""
    match = _HINT_NAME.match(name)
    return COMPACTED_BASE + int(match.group(1)) if match else None


def _ints(typecode: str, values: Iterable[int] = ()) -> array[int]:
    """An unsigned column: ``Q`` is 8 bytes, ``I`` is 4, on every platform we run on."""
    column = array(typecode, values)
    assert column.itemsize == (8 if typecode == "Q" else 4), "unsupported platform"
    return column


@dataclass(slots=True)
class Hint:
    """One compacted segment's records as recovery needs them: no values."""

    segment_bytes: int
    keys: list[bytes]
    #: Columns stay arrays: no Python int per entry is kept alive.
    seqs: Sequence[int]
    #: Each record's ``offset << 32 | size``: its location without the segment id.
    refs: Sequence[int]
    #: Entry numbers of the DELETE records (the rest are PUTs), ascending.
    deletes: list[int]
    #: Entry number -> absolute expiry, for the records that expire.
    expiring: dict[int, float]

    @property
    def sizes(self) -> list[int]:
        """Each record's size."""
        return [ref & SIZE_MASK for ref in self.refs]

    def offsets(self) -> list[int]:
        """Each record's offset in the segment."""
        return [ref >> SIZE_BITS for ref in self.refs]

    def records(self) -> Iterator[ScannedRecord]:
        """The entries as a segment scan would yield them (for the slow, general path)."""
        deleted = set(self.deletes)
        expiring = self.expiring
        for i, (ref, seq, key) in enumerate(zip(self.refs, self.seqs, self.keys, strict=True)):
            rtype = DELETE if i in deleted else PUT
            yield ref >> SIZE_BITS, ref & SIZE_MASK, rtype, seq, expiring.get(i, NO_EXPIRY), key


class HintBuilder:
    """Collects a compacted segment's entries as its records are written, back to back."""

    def __init__(self) -> None:
        self.keys: list[bytes] = []
        self.seqs = _ints("Q")
        self.refs = _ints("Q")
        self.deletes: list[int] = []
        self.expiring: dict[int, float] = {}
        #: Where the next record starts: segments hold at most MAX_SEGMENT_BYTES.
        self.position = FILE_HEADER_SIZE

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key: bytes, seq: int, size: int, rtype: int, expires_at: float) -> None:
        """Note the next record of the segment (a PUT or a DELETE)."""
        if rtype == DELETE:
            self.deletes.append(len(self.keys))
        elif expires_at != NO_EXPIRY:
            self.expiring[len(self.keys)] = expires_at
        self.keys.append(key)
        self.seqs.append(seq)
        self.refs.append(self.position << SIZE_BITS | size)
        self.position += size

    def encode(self) -> bytes:
        """The hint file's bytes."""
        keys = b"".join(self.keys)
        columns: list[array[int] | array[float]] = [
            self.seqs,
            self.refs,
            _ints("I", map(len, self.keys)),
            _ints("Q", self.deletes),
            _ints("Q", self.expiring),
            array("d", self.expiring.values()),
        ]
        counts = (len(self.keys), len(keys), len(self.deletes), len(self.expiring), self.position)
        parts = [encode_file_header(FileKind.HINT), _COUNTS.pack(*counts)]
        for column in columns:
            if _SWAP:
                column = column[:]
                column.byteswap()
            parts.append(column.tobytes())
        parts.append(keys)
        body = b"".join(parts)
        return body + _CRC.pack(crc32c(body))


def decode_hint(data: bytes, name: str) -> Hint:
    """Parse and check a hint file; raise CorruptionError on any inconsistency found.

    Every count is checked against the file's length before anything is
    sliced. The checks are the ones that cost no Python step per entry; the CRC
    catches damage, and a read checks each record's own CRC and key anyway.
    """
    if len(data) < HINT_OVERHEAD:
        raise CorruptionError(f"{name}: hint is short ({len(data)} bytes)")
    check_file_header(data, FileKind.HINT, name)
    if _CRC.unpack_from(data, len(data) - _CRC.size)[0] != crc32c(memoryview(data)[:-4]):
        raise CorruptionError(f"{name}: hint CRC mismatch")
    count, keys_bytes, deletes, expiring, segment_bytes = _COUNTS.unpack_from(
        data, FILE_HEADER_SIZE
    )
    expected = HINT_OVERHEAD + count * 20 + deletes * 8 + expiring * 16 + keys_bytes
    if expected != len(data):
        raise CorruptionError(f"{name}: hint counts do not match its length")
    view = memoryview(data)
    position = FILE_HEADER_SIZE + _COUNTS.size
    seqs, refs, key_lens = _ints("Q"), _ints("Q"), _ints("I")
    delete_index, expiring_index, expires = _ints("Q"), _ints("Q"), array("d")
    for column, n in (
        (seqs, count),
        (refs, count),
        (key_lens, count),
        (delete_index, deletes),
        (expiring_index, expiring),
        (expires, expiring),
    ):
        end = position + n * column.itemsize
        column.frombytes(view[position:end])
        if _SWAP:
            column.byteswap()
        position = end
    # One key length throughout (the common case) is checked with one comparison of
    # bytes, and then the keys split in one C call: three times faster than slicing.
    key_len = key_lens[0] if count else 0
    uniform = key_lens == _ints("I", [key_len]) * count
    shortest, longest = (key_len, key_len) if uniform else (min(key_lens), max(key_lens))
    if count and not 1 <= shortest <= longest <= MAX_KEY_SIZE:
        raise CorruptionError(f"{name}: hint holds a key length out of bounds")
    if (key_len * count if uniform else sum(key_lens)) != keys_bytes:
        raise CorruptionError(f"{name}: hint key lengths do not add up")
    # Records are back to back: the first starts after the header, the last ends the file.
    if count and (
        refs[0] >> SIZE_BITS != FILE_HEADER_SIZE
        or (refs[-1] >> SIZE_BITS) + (refs[-1] & SIZE_MASK) != segment_bytes
    ):
        raise CorruptionError(f"{name}: hint records do not span its segment")
    for index in (delete_index, expiring_index):
        if index and (max(index) >= count or any(map(operator.ge, index, index[1:]))):
            raise CorruptionError(f"{name}: hint entry numbers out of order or bounds")
    if not all(0.0 < t < math.inf for t in expires) or set(delete_index) & set(expiring_index):
        raise CorruptionError(f"{name}: hint holds an invalid expiry")
    if uniform and count:
        split = struct.iter_unpack(f"{key_len}s", view[position : position + keys_bytes])
        keys = list(map(_FIRST, split))
    else:
        bounds = itertools.pairwise(itertools.accumulate(key_lens, initial=position))
        keys = [data[start:end] for start, end in bounds]
    return Hint(
        segment_bytes,
        keys,
        seqs,
        refs,
        delete_index.tolist(),
        dict(zip(expiring_index.tolist(), expires.tolist(), strict=True)),
    )


def write_hint(fs: FileSystem, directory: str, segment_id: int, builder: HintBuilder) -> int:
    """Write and fsync the hint of ``segment_id``; return its size."""
    data = builder.encode()
    handle = fs.open(os.path.join(directory, hint_name(segment_id)), create=True)
    try:
        handle.truncate(0)
        write_all(handle, data)
        handle.fsync()
    finally:
        handle.close()
    return len(data)


def read_hint(fs: FileSystem, directory: str, segment_id: int) -> Hint | None:
    """The hint of compacted segment ``segment_id``, or None (logged) if it cannot be trusted.

    Besides its own checks, the hint must match its segment: same length and a
    valid segment header. Whatever the reason, the caller scans the segment.
    """
    name = hint_name(segment_id)
    path = os.path.join(directory, name)
    if not fs.exists(path):
        log.warning("%s: missing; scanning %s instead", name, segment_name(segment_id))
        return None
    try:
        hint = decode_hint(fs.read_file(path), name)
        segment = fs.open(os.path.join(directory, segment_name(segment_id)))
        try:
            size = segment.size()
            check_segment_header(segment.pread(FILE_HEADER_SIZE, 0), segment_name(segment_id))
        finally:
            segment.close()
        if size != hint.segment_bytes:
            raise CorruptionError(f"{name}: describes {hint.segment_bytes} bytes, not {size}")
    except (CorruptionError, OSError) as exc:
        log.warning("%s: %s; scanning %s instead", name, exc, segment_name(segment_id))
        return None
    return hint
