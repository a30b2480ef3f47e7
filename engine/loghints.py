"""Hints for log segments: a store that is never compacted reopens without scanning its log.

``Engine.close`` writes ``0000000003.shint`` beside each log segment
``0000000003.seg`` that has no hint matching it: the entries of a compacted
segment's hint (``engine.hints``), followed by a trailer::

    hint bytes (kind HINT, own CRC) | segment bytes u64 | segment crc u32 | flags u32
    | crc32c u32 of all before

``segment crc`` is the crc32c of every byte of the segment; ``flags`` is 0
(reserved). A hint is written only for a segment holding nothing but valid
plain puts and deletes, back to back, with rising sequence numbers: a segment
with batch records or any damage is scanned as before. It goes to a temporary
name, is fsynced, renamed and the directory fsynced, so a crash leaves the old
hint, the new one or none; a torn temporary is never read. Recovery trusts a
hint only if it is whole, its CRCs hold and the segment's length and CRC are
what it was built from (checking the segment's CRC costs a few milliseconds per
64 MiB at C speed), so a stale hint or a segment damaged since is scanned as
without hints.
"""

from __future__ import annotations

import logging
import math
import os
import re
import struct
from typing import Final

from crc32c import crc32c

from engine.errors import CorruptionError
from engine.format import (
    DELETE,
    LAYOUTS,
    MAX_KEY_SIZE,
    MAX_VALUE_SIZE,
    MIN_HEADER_SIZE,
    NO_EXPIRY,
    PUT,
    TYPE_MASK,
    unpack_expiry,
)
from engine.fs import FileSystem, write_all
from engine.hints import Hint, HintBuilder, decode_hint
from engine.location import SIZE_BITS
from engine.segment import list_segments, segment_name

log = logging.getLogger("seglog.recovery")

LOG_HINT_SUFFIX: Final = ".shint"
_NAME: Final = re.compile(r"^(\d{10})\.shint$")
_TEMP_SUFFIX: Final = ".tmp"
_MARKS: Final = struct.Struct("<QII")
_CRC: Final = struct.Struct("<I")
_TRAILER_SIZE: Final = _MARKS.size + _CRC.size
_CHUNK: Final = 1 << 20


def log_hint_name(segment_id: int) -> str:
    """The hint file of log segment ``segment_id``."""
    return f"{segment_id:010d}{LOG_HINT_SUFFIX}"


def parse_log_hint_name(name: str) -> int | None:
    """The id of the log segment that hint file ``name`` describes, or None."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def _segment_crc(fs: FileSystem, path: str) -> tuple[int, int]:
    """The crc32c of every byte of the file at ``path``, and its length, read in chunks."""
    handle = fs.open(path)
    try:
        size = handle.size()
        crc = 0
        for offset in range(0, size, _CHUNK):
            crc = crc32c(handle.pread(min(_CHUNK, size - offset), offset), crc)
    finally:
        handle.close()
    return crc, size


def build_log_hint(data: bytes) -> HintBuilder | None:
    """The entries of segment bytes ``data``, or None unless it holds only sound plain records.

    The checks are recovery's fast path's (``_Replayer.apply_plain_run``), so a
    hint never describes a record that a scan would cut or skip. The builder's
    columns are filled inline: this loop is close's cost, one step per record.
    """
    layouts = LAYOUTS
    builder = HintBuilder()
    keys, seqs, refs = builder.keys, builder.seqs, builder.refs
    offset = builder.position
    length = len(data)
    last_seq = 0
    while offset < length:
        if length - offset < MIN_HEADER_SIZE:
            return None
        layout = layouts[data[offset + 4]]
        if layout is None or length - offset < layout[1]:
            return None
        unpack, head, expiry_at = layout
        crc, tag, seq, klen, vlen = unpack(data, offset)
        rtype = tag & TYPE_MASK
        if (rtype != PUT and rtype != DELETE) or klen > MAX_KEY_SIZE or vlen > MAX_VALUE_SIZE:
            return None
        size = head + klen + vlen
        end = offset + size
        if end > length or crc != crc32c(data[offset + 4 : end]) or seq <= last_seq:
            return None
        expires_at = unpack_expiry(data, offset + expiry_at)[0] if expiry_at else NO_EXPIRY
        if expires_at != NO_EXPIRY or rtype == DELETE or klen == 0:
            if not expires_at >= 0.0 or expires_at == math.inf or klen == 0:
                return None
            if rtype == DELETE:
                builder.deletes.append(len(keys))
            else:
                builder.expiring[len(keys)] = expires_at
        keys.append(data[offset + head : offset + head + klen])
        seqs.append(seq)
        refs.append(offset << SIZE_BITS | size)
        last_seq = seq
        offset = end
    builder.position = offset
    return builder


def encode_log_hint(builder: HintBuilder, data: bytes) -> bytes:
    """The ``.shint`` file's bytes for segment bytes ``data``, which ``builder`` describes."""
    body = builder.encode() + _MARKS.pack(len(data), crc32c(data), 0)
    return body + _CRC.pack(crc32c(body))


def _check_trailer(data: bytes, name: str) -> tuple[int, int]:
    """The segment size and CRC a ``.shint`` records, once its own CRC holds."""
    if len(data) < _TRAILER_SIZE:
        raise CorruptionError(f"{name}: log hint is short ({len(data)} bytes)")
    if _CRC.unpack_from(data, len(data) - _CRC.size)[0] != crc32c(memoryview(data)[:-4]):
        raise CorruptionError(f"{name}: log hint CRC mismatch")
    size, segment_crc, flags = _MARKS.unpack_from(data, len(data) - _TRAILER_SIZE)
    if flags:
        raise CorruptionError(f"{name}: log hint has unknown flags {flags:#x}")
    return size, segment_crc


def decode_log_hint(data: bytes, name: str) -> tuple[Hint, int]:
    """The hint and segment CRC of a ``.shint`` file; CorruptionError if it is damaged."""
    size, segment_crc = _check_trailer(data, name)
    hint = decode_hint(data[:-_TRAILER_SIZE], name)
    if hint.segment_bytes != size:
        raise CorruptionError(f"{name}: log hint sizes disagree")
    return hint, segment_crc


def _check_segment(fs: FileSystem, directory: str, segment_id: int, size: int, crc: int) -> None:
    """Raise CorruptionError unless the segment holds ``size`` bytes whose CRC32C is ``crc``."""
    name = log_hint_name(segment_id)
    found, length = _segment_crc(fs, os.path.join(directory, segment_name(segment_id)))
    if length != size:
        raise CorruptionError(f"{name}: describes {size} bytes, not {length}")
    if found != crc:
        raise CorruptionError(f"{name}: its segment's bytes changed since it was written")


def read_log_hint(fs: FileSystem, directory: str, segment_id: int) -> Hint | None:
    """The hint of log segment ``segment_id``, or None if it cannot be trusted.

    None when missing (quietly: the store was not closed since the segment was
    written) or when damaged or not matching every byte of the segment
    (logged); either way the caller scans the segment, and finds any damage.
    """
    name = log_hint_name(segment_id)
    path = os.path.join(directory, name)
    if not fs.exists(path):
        return None
    try:
        hint, segment_crc = decode_log_hint(fs.read_file(path), name)
        _check_segment(fs, directory, segment_id, hint.segment_bytes, segment_crc)
    except (CorruptionError, OSError) as exc:
        # A stale hint is normal after a crash, and a scan reports any damage itself.
        log.info("%s; scanning %s instead", exc, segment_name(segment_id))
        return None
    return hint


def _hinted(fs: FileSystem, directory: str, segment_id: int) -> bool:
    """Whether the segment has a hint matching it, checked without decoding its entries."""
    path = os.path.join(directory, log_hint_name(segment_id))
    if not fs.exists(path):
        return False
    try:
        size, crc = _check_trailer(fs.read_file(path), log_hint_name(segment_id))
        _check_segment(fs, directory, segment_id, size, crc)
    except CorruptionError:
        return False
    return True


def write_log_hints(fs: FileSystem, directory: str, segment_ids: list[int]) -> int:
    """Write a hint for each of ``segment_ids`` that has none matching it; return how many.

    Called with the store's log segments once nothing more is appended (at
    close). Each hint is written to a temporary name, fsynced and renamed; the
    directory is fsynced once at the end.
    """
    written = 0
    for segment_id in segment_ids:
        if _hinted(fs, directory, segment_id):
            continue
        data = fs.read_file(os.path.join(directory, segment_name(segment_id)))
        builder = build_log_hint(data)
        if builder is None or not len(builder):
            continue
        path = os.path.join(directory, log_hint_name(segment_id))
        handle = fs.open(path + _TEMP_SUFFIX, create=True)
        try:
            handle.truncate(0)
            write_all(handle, encode_log_hint(builder, data))
            handle.fsync()
        finally:
            handle.close()
        fs.replace(path + _TEMP_SUFFIX, path)
        written += 1
    if written:
        fs.fsync_dir(directory)
    return written


def hint_log_at_close(fs: FileSystem, directory: str) -> None:
    """Hint the closed store's log segments; a failure only costs the next open a scan."""
    try:
        write_log_hints(fs, directory, list_segments(fs, directory))
    except OSError as exc:
        log.warning("%s: log hints not written (%s); the next open scans the log", directory, exc)
