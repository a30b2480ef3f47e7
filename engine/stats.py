"""The shape of ``Engine.stats()``: typed dicts, so callers get checked keys and plain JSON.

TypedDicts rather than dataclasses because the result is documented, printed
and compared as JSON (``seglog stats --json``): a TypedDict is that dict, with
its keys and value types known to mypy.
"""

from __future__ import annotations

from typing import Any, TypedDict


class SegmentStats(TypedDict):
    """One segment file: its size, and how much of it is live or dead records."""

    bytes: int
    live_bytes: int
    dead_bytes: int


class RecoveryStats(TypedDict):
    """What the last open's recovery replayed, cut and skipped (``RecoveryReport``)."""

    mode: str
    segments: int
    records: int
    truncated_bytes: int
    skipped_bytes: int
    incomplete_batches: int
    quarantined_segments: list[str]
    damage: list[str]


class CompactionStats(TypedDict):
    """Whether compaction runs by itself, is running now, and how many have finished."""

    auto: bool
    running: bool
    count: int


class EngineStats(TypedDict):
    """``Engine.stats()``: keys, segments with live and dead bytes, writes, fsyncs, recovery."""

    path: str
    sync: str
    keys: int
    expiring_keys: int
    #: By segment file name.
    segments: dict[str, SegmentStats]
    segment_count: int
    active_segment: str
    disk_bytes: int
    #: Bytes still free for this process on the file system holding the store.
    free_bytes: int
    live_bytes: int
    dead_bytes: int
    sequence: int
    writes: int
    fsyncs: int
    fsyncs_per_write: float
    failed: bool
    recovery: RecoveryStats
    compaction: CompactionStats
    #: ``CompactionReport.as_dict()`` of the last compaction, or None.
    last_compaction: dict[str, Any] | None
