"""Rewrite a store's log as format version 1, as an older seglog left it.

The crash tiers start workloads from such a store (``campaign.LEGACY``), so
that crashes are also checked where today's engine writes beside, and
recovers, records of the older format. Only log segments are rewritten; their
log hints are dropped, as an older seglog wrote none.
"""

from __future__ import annotations

import os

from engine.errors import CorruptionError
from engine.format import (
    FILE_HEADER_SIZE,
    VALUE_LEN_U8,
    FileKind,
    encode_file_header,
    encode_record,
    header_size,
)
from engine.fs import FileSystem, write_all
from engine.loghints import parse_log_hint_name
from engine.reader import record_at
from engine.segment import check_segment_header, parse_segment_name


def as_version_1(data: bytes) -> bytes:
    """A segment's bytes with each record framed in version 1; nothing but zeros may follow."""
    parts = [encode_file_header(FileKind.SEGMENT, 1)]
    offset = FILE_HEADER_SIZE
    while (record := record_at(data, offset)) is not None:
        _offset, size, rtype, seq, expires_at, key = record
        value = data[offset + header_size(data, offset) + len(key) : offset + size]
        parts.append(encode_record(rtype, seq, expires_at, key, value, version=1))
        offset += size
    if any(data[offset:]):
        raise ValueError(f"not a sound segment: no record at offset {offset}")
    return b"".join(parts)


def downgrade(fs: FileSystem, directory: str) -> None:
    """Rewrite every log segment in ``directory`` (a closed store) as version 1, durably."""
    for name in fs.listdir(directory):
        path = os.path.join(directory, name)
        if parse_log_hint_name(name) is not None:
            fs.unlink(path)
        elif parse_segment_name(name) is not None:
            data = as_version_1(fs.read_file(path))
            handle = fs.open(path)
            try:
                handle.truncate(0)
                write_all(handle, data)
                handle.fsync()
            finally:
                handle.close()
        elif name.endswith((".cseg", ".hint")):
            raise ValueError(f"{name}: only a store never compacted can be downgraded")
    fs.fsync_dir(directory)


def misplaced_records(fs: FileSystem, directory: str) -> list[str]:
    """Version-2 records found in version-1 segments: seglog never appends them there."""
    found = []
    for name in sorted(fs.listdir(directory)):
        if parse_segment_name(name) is None:
            continue
        data = fs.read_file(os.path.join(directory, name))
        try:
            if check_segment_header(data, name) != 1:
                continue
        except CorruptionError:  # a header a crash cut short: no records behind it
            continue
        offset = FILE_HEADER_SIZE
        while (record := record_at(data, offset)) is not None:
            if data[offset + 4] >= VALUE_LEN_U8:
                found.append(f"{name}: a version-2 record at offset {offset}")
            offset += record[1]
    return found
