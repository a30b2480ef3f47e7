"""Helpers for the compaction tests: a hand-moved clock, stores on the in-memory fs, checks."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from engine import Engine
from engine.compaction import CompactionReport
from engine.fs import FileSystem
from engine.hints import parse_hint_name
from engine.manifest import MANIFEST, MANIFEST_TMP, decode_manifest
from engine.segment import parse_compacted_name, segment_name

DIRECTORY = "/store"


class Clock:
    """A clock the tests move by hand, so expiry never depends on real time."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def open_store(fs: FileSystem, clock: Clock, *, segment_size: int = 512, **options: Any) -> Engine:
    """A store in DIRECTORY with small segments, no background threads, no automatic compaction."""
    settings: dict[str, Any] = {"sync": "none", "auto_compact": False, "segment_size": segment_size}
    settings.update(options)
    return Engine.open(DIRECTORY, fs=fs, clock=clock, **settings)


def contents(db: Engine) -> dict[bytes, bytes]:
    """Everything the store holds, as a dict."""
    return dict(db.scan())


def sealed(db: Engine) -> list[str]:
    """Names of the sealed segments, oldest id first (log segments, then compacted ones)."""
    active = db.stats()["active_segment"]
    return [name for name in db.stats()["segments"] if name != active]


def compact_segments(db: Engine, names: Iterable[str]) -> CompactionReport | None:
    """Compact exactly the named sealed segments (a partial compaction), without a rollover."""
    wanted = set(names)
    return db.internals.compactor.compact(
        lambda sizes: [i for i in sizes if segment_name(i) in wanted], "partial"
    )


def assert_clean(fs: FileSystem, directory: str = DIRECTORY) -> None:
    """No compaction leftovers: every output and hint is listed, nothing dropped remains."""
    names = set(fs.listdir(directory))
    assert MANIFEST_TMP not in names
    if MANIFEST not in names:
        assert not any(parse_compacted_name(n) or parse_hint_name(n) for n in names)
        return
    manifest = decode_manifest(fs.read_file(os.path.join(directory, MANIFEST)))
    assert not names & set(manifest.dropped)
    for name in names:
        segment_id = parse_compacted_name(name) or parse_hint_name(name)
        if segment_id is not None:
            assert segment_id in manifest.segments, name
