"""Compaction policy: when automatic compaction runs, which segments it rewrites, and
which tombstones a rewrite must keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from engine.format import FILE_HEADER_SIZE, LAYOUTS, MAX_HEADER_SIZE, parse_record
from engine.fs import Mapping
from engine.keyspace import Keyspace
from engine.manifest import Manifest

#: A record header's last two fields: key and value lengths.

#: Picks a compaction's inputs among the sealed segments (id -> bytes); called under the lock.
Chooser = Callable[[dict[int, int]], Iterable[int]]


@dataclass(frozen=True)
class CompactionOptions:
    """When automatic compaction runs.

    ``auto`` turns the background thread on. It compacts the sealed segments
    whose dead share of bytes is at least ``ratio`` once they hold
    ``min_bytes`` of dead data between them, checking every ``interval``
    seconds. ``Engine.compact()`` ignores all of these and compacts everything.
    """

    auto: bool = True
    ratio: float = 0.5
    min_bytes: int = 16 << 20
    interval: float = 1.0

    def __post_init__(self) -> None:
        if not isinstance(self.auto, bool):
            raise TypeError(f"auto_compact must be a bool, not {type(self.auto).__name__}")
        for name, value in (("compact_ratio", self.ratio), ("compact_interval", self.interval)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, not {type(value).__name__}")
        if not 0.0 < self.ratio <= 1.0:
            raise ValueError(f"compact_ratio must be in (0, 1], not {self.ratio!r}")
        if not 0.0 < self.interval < math.inf:
            raise ValueError(f"compact_interval must be positive, not {self.interval!r}")
        if isinstance(self.min_bytes, bool) or not isinstance(self.min_bytes, int):
            raise TypeError(
                f"compact_min_bytes must be an int, not {type(self.min_bytes).__name__}"
            )
        if self.min_bytes < 0:
            raise ValueError(f"compact_min_bytes must be >= 0, not {self.min_bytes}")


@dataclass
class Plan:
    """What a compaction works on, captured under the write lock."""

    inputs: list[int]
    maps: dict[int, Mapping]
    sizes: dict[int, int]
    #: A tombstone newer than this must be kept: an outside segment holds older records.
    keep_after: float
    now: float


def select(
    sealed: dict[int, int], keyspace: Keyspace, manifest: Manifest, options: CompactionOptions
) -> list[int]:
    """The sealed segments (id -> bytes) automatic compaction should rewrite now, if any.

    A segment qualifies when its dead share of bytes reaches ``options.ratio``;
    the qualifying ones are chosen once they hold ``options.min_bytes`` of dead
    data between them. Kept tombstones count as dead bytes but compacting
    their segment alone would keep them again, so they do not count towards
    choosing it. Called with the write lock held.
    """
    chosen = []
    reclaimable = 0
    for segment_id, size in sealed.items():
        compacted = manifest.segments.get(segment_id)
        gain = keyspace.dead_bytes(segment_id) - (compacted.tombstone_bytes if compacted else 0)
        if gain > 0 and gain >= options.ratio * size:
            chosen.append(segment_id)
            reclaimable += gain
    return sorted(chosen) if chosen and reclaimable >= options.min_bytes else []


def first_seq(manifest: Manifest, segment_id: int, mapping: Mapping, size: int) -> float:
    """The lowest sequence number in a sealed segment (inf if it holds no record).

    A log segment is written in sequence order, so that is its first record's;
    a compacted segment's is in the manifest. A first record that does not
    parse counts as 0: it could hold anything. The lowest over the sealed
    segments a compaction leaves out is its ``Plan.keep_after``.
    """
    compacted = manifest.segments.get(segment_id)
    if compacted is not None:
        return compacted.min_seq if compacted.size > FILE_HEADER_SIZE else math.inf
    if size <= FILE_HEADER_SIZE:
        return math.inf
    head = mapping[FILE_HEADER_SIZE : FILE_HEADER_SIZE + MAX_HEADER_SIZE]
    layout = LAYOUTS[head[4]] if len(head) > 4 else None
    if layout is None or len(head) < layout[1]:
        return 0
    _crc, _tag, _seq, key_len, value_len = layout[0](head, 0)
    end = min(FILE_HEADER_SIZE + layout[1] + key_len + value_len, size)
    parsed = parse_record(mapping[FILE_HEADER_SIZE:end], 0)
    return parsed[1] if parsed is not None else 0
