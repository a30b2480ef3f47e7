"""Which files of a store directory hold its data, read from the manifest without changing it.

The engine's ``open_manifest`` deletes the leftovers of compactions as it reads
the manifest; this reads the same manifest and only says what it would do,
so that ``verify`` and ``repair`` read exactly the files recovery would replay.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from engine.checkpoint import MARKER
from engine.errors import CorruptionError
from engine.hints import decode_hint, hint_name, parse_hint_name
from engine.loghints import LOG_HINT_SUFFIX, parse_log_hint_name
from engine.manifest import MANIFEST, MANIFEST_TMP, Manifest, decode_manifest
from engine.segment import LOCK_FILE, parse_compacted_name, parse_segment_name, segment_name
from seglog_cli.commands._walk import Damage, read_file

#: Notes on files that hold no live data, by what opening the store does with them.
_LEFTOVER = "left by a compaction that never committed; opening deletes it"
_ORPHAN_HINT = "a log hint whose segment is gone; never read"
_TORN_HINT = "a log hint a crash left half written; never read, replaced at the next close"
_DROPPED = "an input that the last compaction replaced; opening deletes it"
_INCOMPLETE = "a checkpoint or restore that never finished: files may be missing; opening refuses"


@dataclass
class Layout:
    """The files recovery would replay, problems with the manifest, and notes on the rest."""

    #: Committed compaction outputs (``.cseg``), replayed first, ascending.
    compacted: list[int] = field(default_factory=list)
    #: Log segments (``.seg``), ascending; the last is the active one.
    logs: list[int] = field(default_factory=list)
    manifest: Manifest | None = None
    problems: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def segments(self) -> list[int]:
        """Every segment to read, in replay order."""
        return [*self.compacted, *self.logs]

    def size(self, directory: str) -> int:
        """Total bytes of the segments to read."""
        return sum(os.path.getsize(os.path.join(directory, segment_name(i))) for i in self.segments)


def read_layout(directory: str) -> Layout:
    """What the store at ``directory`` holds, from its listing and its manifest."""
    layout = Layout()
    names = sorted(os.listdir(directory))
    present = set(names)
    unreadable = False
    if MANIFEST in present:
        data = read_file(directory, MANIFEST)
        try:
            layout.manifest = decode_manifest(data)
        except CorruptionError as exc:
            unreadable = True
            layout.problems.append(
                Damage(MANIFEST, 0, len(data), "bad-manifest", f"{exc}; opening refuses the store")
            )
            layout.notes.append(
                f"{MANIFEST} unreadable: every .cseg file is read, and inputs that a "
                "compaction replaced cannot be told from live segments"
            )
    manifest = layout.manifest
    live = manifest.segments if manifest is not None else {}
    dropped = set(manifest.dropped) if manifest is not None else set()
    if manifest is not None:
        _check_listed(directory, manifest, present, layout)
    for name in names:
        log_id = parse_segment_name(name)
        compacted = parse_compacted_name(name)
        hinted = parse_hint_name(name)
        if name in dropped:
            layout.notes.append(f"{name}: {_DROPPED}")
        elif log_id is not None:
            layout.logs.append(log_id)
        elif compacted is not None and (unreadable or compacted in live):
            layout.compacted.append(compacted)
        elif hinted is not None and (unreadable or hinted in live):
            continue  # checked with its segment
        elif compacted is not None or hinted is not None or name == MANIFEST_TMP:
            layout.notes.append(f"{name}: {_LEFTOVER}")
        elif name == MARKER:
            layout.problems.append(Damage(name, 0, 0, "incomplete-checkpoint", _INCOMPLETE))
        elif (logged := parse_log_hint_name(name)) is not None:
            if segment_name(logged) not in present:
                layout.notes.append(f"{name}: {_ORPHAN_HINT}")
        elif name.endswith(LOG_HINT_SUFFIX + ".tmp"):
            layout.notes.append(f"{name}: {_TORN_HINT}")
        elif name.endswith(".quarantined"):
            layout.notes.append(f"{name}: moved aside by point-in-time recovery; not read")
        elif name not in (LOCK_FILE, MANIFEST):
            layout.notes.append(f"{name}: not a seglog file; ignored")
    return layout


def _check_listed(directory: str, manifest: Manifest, present: set[str], layout: Layout) -> None:
    """Problems with the segments the manifest lists: missing, or not the size it recorded."""
    for segment in manifest.segments.values():
        name = segment_name(segment.segment_id)
        if name not in present:
            claims = _hinted(directory, segment.segment_id)
            named = f"; its hint names {len(claims)} records" if claims else ""
            layout.problems.append(
                Damage(
                    name,
                    0,
                    segment.size,
                    "missing-segment",
                    f"listed in MANIFEST but missing{named}",
                    claims,
                )
            )
            continue
        size = os.path.getsize(os.path.join(directory, name))
        if size != segment.size:
            layout.problems.append(
                Damage(
                    name,
                    min(size, segment.size),
                    abs(size - segment.size),
                    "size-mismatch",
                    f"MANIFEST recorded {segment.size} bytes, the file holds {size}",
                )
            )


def _hinted(directory: str, segment_id: int) -> tuple[tuple[bytes, int], ...]:
    """``(key, seq)`` of every record a segment's hint describes, if the hint is sound."""
    name = hint_name(segment_id)
    try:
        hint = decode_hint(read_file(directory, name), name)
    except (OSError, CorruptionError):
        return ()
    return tuple(zip(hint.keys, hint.seqs, strict=True))
