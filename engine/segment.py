"""Segment files: naming, creation and headers (``engine.reader`` reads their records).

A segment is one append-only file: a file header, then records back to back.
The engine appends to exactly one (the active segment); the others are sealed.
"""

from __future__ import annotations

import os
import re
from typing import Final

from engine.format import (
    FILE_HEADER_SIZE,
    FileKind,
    check_file_header,
    encode_file_header,
)
from engine.fs import FileHandle, FileSystem, write_all

#: The owner lock file every store directory holds (``FileSystem.lock``).
LOCK_FILE: Final = "LOCK"
SEGMENT_SUFFIX: Final = ".seg"
_NAME = re.compile(r"^(\d{10})\.seg$")
#: Compaction outputs are named apart (``0000000003.cseg``), so that an output can
#: never be taken for the active segment (the newest log segment) and one that a
#: crash left uncommitted is recognised as such. In memory they take ids from
#: ``COMPACTED_BASE`` up: no log segment id (ten digits) ever reaches it.
COMPACTED_SUFFIX: Final = ".cseg"
COMPACTED_BASE: Final = 10**10
_COMPACTED_NAME = re.compile(r"^(\d{10})\.cseg$")


def segment_name(segment_id: int) -> str:
    """The file name of segment ``segment_id``: zero-padded so names sort by id."""
    if segment_id >= COMPACTED_BASE:
        return f"{segment_id - COMPACTED_BASE:010d}{COMPACTED_SUFFIX}"
    return f"{segment_id:010d}{SEGMENT_SUFFIX}"


def parse_compacted_name(name: str) -> int | None:
    """The segment id of a compaction output's file name, or None if ``name`` is not one."""
    match = _COMPACTED_NAME.match(name)
    return COMPACTED_BASE + int(match.group(1)) if match else None


def parse_segment_name(name: str) -> int | None:
    """The id in a segment file name, or None if ``name`` is not a segment."""
    match = _NAME.match(name)
    return int(match.group(1)) if match else None


def list_segments(fs: FileSystem, directory: str) -> list[int]:
    """Ids of the segments in ``directory``, ascending."""
    ids = (parse_segment_name(name) for name in fs.listdir(directory))
    return sorted(i for i in ids if i is not None)


def create_segment(fs: FileSystem, directory: str, segment_id: int) -> FileHandle:
    """Create a segment holding only its header, made durable with its directory entry."""
    handle = fs.open(os.path.join(directory, segment_name(segment_id)), create=True)
    handle.truncate(0)
    write_all(handle, encode_file_header(FileKind.SEGMENT))
    handle.fsync()
    fs.fsync_dir(directory)
    return handle


def check_segment_header(data: bytes, name: str) -> int:
    """The format version of a segment whose bytes are ``data``; CorruptionError if none."""
    return check_file_header(data, FileKind.SEGMENT, name)


def is_torn_header(data: bytes) -> bool:
    """Whether a newest segment with this content is what a crash during creation leaves.

    A segment's header is durable before any record is written to it, so a
    newest segment whose header did not survive (cut short, zero-filled or
    garbage) and that holds nothing but zeros after it never held a record.
    """
    if data.startswith(encode_file_header(FileKind.SEGMENT)):
        return False
    return not any(data[FILE_HEADER_SIZE:])
