"""Checking a compacted segment's hint file against the records actually in the segment."""

from __future__ import annotations

import os
from collections.abc import Iterator

from engine.errors import CorruptionError
from engine.format import RecordType
from engine.hints import decode_hint, hint_name
from engine.segment import ScannedRecord, segment_name
from seglog_cli.commands._common import show_bytes
from seglog_cli.commands._walk import Damage, read_file


class HintCheck:
    """Compares a compacted segment's hint file, entry by entry, with the segment's records.

    Recovery trusts a hint that decodes and matches its segment's length, so a
    hint that disagrees with its segment in any other way would index keys at
    the wrong places: that is damage. A missing or undecodable hint is damage
    to a file too, though recovery falls back to scanning the segment.
    """

    def __init__(self, directory: str, segment_id: int, segment_size: int) -> None:
        self.name = hint_name(segment_id)
        self.segment = segment_name(segment_id)
        self.problems: list[Damage] = []
        self.entries: Iterator[ScannedRecord] | None = None
        self.count = 0
        if not os.path.exists(os.path.join(directory, self.name)):
            self._problem(0, "missing-hint", f"{self.segment} has no hint")
            return
        data = read_file(directory, self.name)
        self.size = len(data)
        try:
            hint = decode_hint(data, self.name)
        except CorruptionError as exc:
            self._problem(self.size, "bad-hint", str(exc))
            return
        if hint.segment_bytes != segment_size:
            self._problem(
                self.size,
                "hint-mismatch",
                f"describes {hint.segment_bytes} bytes of {self.segment}, "
                f"which holds {segment_size}",
            )
            return
        self.entries = hint.records()

    def _problem(self, length: int, kind: str, detail: str) -> None:
        fallback = "; opening scans the segment instead (nothing lost, a slower open)"
        if kind == "hint-mismatch":
            fallback = ""
        self.problems.append(Damage(self.name, 0, length, kind, detail + fallback))

    def check(self, record: ScannedRecord) -> None:
        """The segment's next record, to compare with the hint's next entry."""
        if self.entries is None:
            return
        entry = next(self.entries, None)
        if entry != record:
            self._mismatch(
                f"entry {self.count} says {_show(entry)}, the segment holds {_show(record)}"
            )
        self.count += 1

    def _mismatch(self, detail: str) -> None:
        self.entries = None
        self._problem(self.size, "hint-mismatch", detail)

    def finish(self, *, segment_damaged: bool) -> list[Damage]:
        """The problems found; a mismatch is left out where the segment itself is damaged."""
        if self.entries is not None and next(self.entries, None) is not None:
            self._mismatch(f"more entries than the {self.count} records of {self.segment}")
        if segment_damaged:
            return [p for p in self.problems if p.kind != "hint-mismatch"]
        return self.problems


def _show(record: ScannedRecord | None) -> str:
    if record is None:
        return "nothing"
    offset, size, rtype, seq, expires_at, key = record
    expiry = f", expires at {expires_at}" if expires_at else ""
    name = RecordType(rtype).name
    return f"{name} seq {seq} key {show_bytes(key)!r} at offset {offset} ({size} bytes{expiry})"
