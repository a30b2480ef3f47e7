"""The manifest: which compacted segments are committed, and which inputs they replaced.

``MANIFEST`` is replaced atomically (write ``MANIFEST.tmp``, fsync it, rename
it over ``MANIFEST``, fsync the directory), so a crash leaves the old one or
the new one, never a mix. Replacing it is a compaction's commit point: a
``.cseg`` or ``.hint`` file it does not list is the leftover of a compaction
that never committed, and a file it lists under ``dropped`` is an input that
the committed compaction replaced but a crash kept from being deleted. Opening
a store deletes both kinds (``open_manifest``). A store without a manifest has
never run a compaction: the first writes one before its first output, so that
compacted files without a manifest can only mean a lost one (opening refuses).
Text, so that an operator can read it::

    seglog-manifest 1
    {"dropped": ["0000000001.seg"], "next": 2, "segments": [{"bytes": 4096, ...}]}
    crc32c 1a2b3c4d

The CRC (hex) covers the first two lines. ``next`` numbers the next compaction
output, so a number is never reused while the store lives.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Final

from crc32c import crc32c

from engine.errors import CorruptionError
from engine.fs import FileSystem, write_all
from engine.hints import parse_hint_name
from engine.segment import COMPACTED_BASE, parse_compacted_name, segment_name

log = logging.getLogger("seglog.compaction")

MANIFEST: Final = "MANIFEST"
MANIFEST_TMP: Final = "MANIFEST.tmp"
_MAGIC: Final = "seglog-manifest 1"


@dataclass(frozen=True)
class CompactedSegment:
    """A committed compaction output.

    ``min_seq`` is the lowest sequence number in it (to decide which tombstones
    a later compaction may drop); ``tombstone_bytes`` is what its kept
    tombstones take, dead bytes that compacting it alone would not reclaim.
    """

    segment_id: int
    size: int
    min_seq: int
    tombstone_bytes: int


@dataclass(frozen=True)
class Manifest:
    """The committed compaction outputs, the next output number, and the last inputs."""

    segments: dict[int, CompactedSegment] = field(default_factory=dict)
    next_number: int = 1
    dropped: tuple[str, ...] = ()

    def next_id(self) -> int:
        """The segment id the next compaction output takes."""
        return COMPACTED_BASE + self.next_number


def encode_manifest(manifest: Manifest) -> bytes:
    """The manifest file's bytes."""
    body: dict[str, Any] = {
        "dropped": list(manifest.dropped),
        "next": manifest.next_number,
        "segments": [
            {
                "bytes": s.size,
                "min_seq": s.min_seq,
                "name": segment_name(s.segment_id),
                "tombstone_bytes": s.tombstone_bytes,
            }
            for s in sorted(manifest.segments.values(), key=lambda s: s.segment_id)
        ],
    }
    text = f"{_MAGIC}\n{json.dumps(body, sort_keys=True, separators=(', ', ': '))}\n"
    data = text.encode()
    return data + f"crc32c {crc32c(data):08x}\n".encode()


def decode_manifest(data: bytes, name: str = MANIFEST) -> Manifest:
    """Parse and check a manifest; raise CorruptionError if it is not one we wrote."""
    lines = data.split(b"\n")
    if len(lines) != 4 or lines[0] != _MAGIC.encode() or lines[3]:
        raise CorruptionError(f"{name}: not a seglog manifest")
    signed = lines[0] + b"\n" + lines[1] + b"\n"
    if lines[2] != f"crc32c {crc32c(signed):08x}".encode():
        raise CorruptionError(f"{name}: CRC mismatch")
    try:
        body = json.loads(lines[1])
        segments = {}
        for entry in body["segments"]:
            segment_id = parse_compacted_name(entry["name"])
            if segment_id is None or segment_id in segments:
                raise ValueError(f"bad segment name {entry['name']!r}")
            sizes = (entry["bytes"], entry["min_seq"], entry["tombstone_bytes"])
            if not all(type(n) is int and n >= 0 for n in sizes):
                raise ValueError(f"bad numbers for {entry['name']}")
            segments[segment_id] = CompactedSegment(segment_id, *sizes)
        next_number = body["next"]
        dropped = tuple(body["dropped"])
        if type(next_number) is not int or COMPACTED_BASE + next_number <= max(segments, default=0):
            raise ValueError("bad next number")
        if not all(type(n) is str and n == os.path.basename(n) for n in dropped):
            raise ValueError("bad dropped file name")
        if {segment_name(i) for i in segments} & set(dropped):
            raise ValueError("a segment is both live and dropped")
    except (ValueError, KeyError, TypeError) as exc:
        raise CorruptionError(f"{name}: {exc}") from exc
    return Manifest(segments, next_number, dropped)


def commit_manifest(fs: FileSystem, directory: str, manifest: Manifest) -> None:
    """Atomically replace the manifest: tmp file, fsync, rename, fsync the directory."""
    tmp = os.path.join(directory, MANIFEST_TMP)
    handle = fs.open(tmp, create=True)
    try:
        handle.truncate(0)
        write_all(handle, encode_manifest(manifest))
        handle.fsync()
    finally:
        handle.close()
    fs.replace(tmp, os.path.join(directory, MANIFEST))
    fs.fsync_dir(directory)


def open_manifest(fs: FileSystem, directory: str) -> Manifest:
    """Read the manifest and finish what a crash interrupted; the directory is then clean.

    Deletes a leftover ``MANIFEST.tmp``, outputs and hints the manifest does not
    list, and inputs it lists as dropped. Raises CorruptionError if the manifest
    is damaged, a segment it lists is missing, or it is missing itself while
    compacted files exist (compaction writes a manifest before its first
    output, so only a lost manifest leaves them): a loss is never silent.
    """
    path = os.path.join(directory, MANIFEST)
    names = fs.listdir(directory)
    if not fs.exists(path):
        orphans = sorted(n for n in names if parse_compacted_name(n) or parse_hint_name(n))
        if orphans:
            raise CorruptionError(f"{directory}: {orphans} but no {MANIFEST} to say which count")
    manifest = decode_manifest(fs.read_file(path)) if fs.exists(path) else Manifest()
    listed = {segment_name(i) for i in manifest.segments}
    missing = listed.difference(names)
    if missing:
        raise CorruptionError(f"{directory}: {MANIFEST} lists missing {sorted(missing)}")
    leftovers = [name for name in names if _is_leftover(name, manifest)]
    for name in leftovers:
        fs.unlink(os.path.join(directory, name))
    if leftovers:
        fs.fsync_dir(directory)
        log.info("%s: removed compaction leftovers %s", directory, leftovers)
    return manifest


def _is_leftover(name: str, manifest: Manifest) -> bool:
    """Whether ``name`` is a file that an interrupted or finished compaction left behind."""
    if name == MANIFEST_TMP or name in manifest.dropped:
        return True
    segment_id = parse_compacted_name(name)
    if segment_id is None:
        segment_id = parse_hint_name(name)
    return segment_id is not None and segment_id not in manifest.segments
