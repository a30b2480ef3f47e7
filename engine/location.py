"""Where a record is: log positions and packed locations, as plain ints. Pure functions.

A *position* names a byte of the log: ``segment_id << 40 | offset`` (offsets up
to 1 TiB), so "how far has the log been written / fsynced" is one comparison,
even across a rollover. A *location* names one record: its position and its
size, ``position << 32 | size`` (sizes up to 4 GiB), which is
``segment_id << 72 | offset << 32 | size``. One int costs far less memory in
the index than a tuple. A hint file's *ref* is a location without its segment
id: ``offset << 32 | size``.

The engine's hot paths inline these shifts; this module is where they are
defined, and everything else names the constants from here.
"""

from __future__ import annotations

from typing import Final

OFFSET_BITS: Final = 40
SIZE_BITS: Final = 32
SIZE_MASK: Final = (1 << SIZE_BITS) - 1
OFFSET_MASK: Final = (1 << OFFSET_BITS) - 1
#: How far a location is shifted right to give its segment id.
SEGMENT_SHIFT: Final = OFFSET_BITS + SIZE_BITS
#: The bits of a location below the segment id: a hint's ``ref``.
REF_MASK: Final = (1 << SEGMENT_SHIFT) - 1


def position(segment_id: int, offset: int) -> int:
    """One int naming byte ``offset`` of segment ``segment_id``, ordered across segments."""
    return segment_id << OFFSET_BITS | offset


def pack_location(segment_id: int, offset: int, size: int) -> int:
    """One int naming a record: its segment, offset and size."""
    return (segment_id << SEGMENT_SHIFT) | (offset << SIZE_BITS) | size


def unpack_location(location: int) -> tuple[int, int, int]:
    """``(segment_id, offset, size)`` of a packed location."""
    return location >> SEGMENT_SHIFT, (location >> SIZE_BITS) & OFFSET_MASK, location & SIZE_MASK


def segment_of(location: int) -> int:
    """The segment id of a packed location."""
    return location >> SEGMENT_SHIFT


def size_of(location: int) -> int:
    """The record size of a packed location."""
    return location & SIZE_MASK
