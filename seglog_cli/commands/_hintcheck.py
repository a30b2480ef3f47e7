"""Checking a segment's hint file (compacted or log) against the records actually in the segment."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

from engine.errors import CorruptionError
from engine.format import DELETE, NO_EXPIRY, PUT, RecordType
from engine.hints import Hint, decode_hint, hint_name
from engine.loghints import decode_log_hint, log_hint_name
from engine.reader import ScannedRecord
from engine.segment import COMPACTED_BASE, segment_name
from seglog_cli.commands._common import show_bytes
from seglog_cli.commands._walk import Damage, read_file


class HintCheck:
    """Compares a compacted segment's hint file, entry by entry, with the segment's records.

    Recovery trusts a hint that decodes and matches its segment's length, so a
    hint that disagrees with its segment in any other way would index keys at
    the wrong places: that is damage. A missing or undecodable hint is damage
    to a file too, though recovery falls back to scanning the segment.

    The records are gathered in columns, as the hint stores them, and compared
    column by column at the end: list equality runs in C, where comparing
    entry by entry doubled the time ``verify`` takes over a compacted store.
    """

    def __init__(self, directory: str, segment_id: int, segment_size: int) -> None:
        #: A log segment's hint (``engine.loghints``) is optional: a store that was
        #: not closed has none, and appends after it make it stale (ignored on open).
        self.optional = segment_id < COMPACTED_BASE
        self.name = log_hint_name(segment_id) if self.optional else hint_name(segment_id)
        self.segment = segment_name(segment_id)
        self.problems: list[Damage] = []
        self.hint: Hint | None = None
        #: A note for a log hint that no longer matches its segment's length.
        self.stale: str | None = None
        self.size = 0
        self.keys: list[bytes] = []
        self.seqs: list[int] = []
        self.sizes: list[int] = []
        self.offsets: list[int] = []
        #: Entry number -> (type, expiry) of every record but a plain non-expiring put.
        self.special: dict[int, tuple[int, float]] = {}
        if not os.path.exists(os.path.join(directory, self.name)):
            if not self.optional:
                self._problem("missing-hint", f"{self.segment} has no hint")
            return
        data = read_file(directory, self.name)
        self.size = len(data)
        try:
            hint = (
                decode_log_hint(data, self.name)[0]
                if self.optional
                else decode_hint(data, self.name)
            )
        except CorruptionError as exc:
            self._problem("bad-hint", str(exc))
            return
        if self.optional and hint.segment_bytes != segment_size:
            self.stale = (
                f"{self.name}: describes {hint.segment_bytes} bytes of {self.segment}, which "
                f"holds {segment_size}: stale, so opening scans the segment; close renews it"
            )
            return
        if hint.segment_bytes != segment_size:
            self._problem(
                "hint-mismatch",
                f"describes {hint.segment_bytes} bytes of {self.segment}, "
                f"which holds {segment_size}",
            )
            return
        self.hint = hint

    def _problem(self, kind: str, detail: str) -> None:
        if kind != "hint-mismatch":
            detail += "; opening scans the segment instead (nothing lost, a slower open)"
        self.problems.append(Damage(self.name, 0, self.size, kind, detail))

    def check(self, record: ScannedRecord) -> None:
        """Note the segment's next record."""
        if self.hint is None:
            return
        offset, size, rtype, seq, expires_at, key = record
        if rtype != PUT or expires_at:
            self.special[len(self.keys)] = (rtype, expires_at)
        self.keys.append(key)
        self.seqs.append(seq)
        self.sizes.append(size)
        self.offsets.append(offset)

    def finish(self, *, segment_damaged: bool) -> list[Damage]:
        """The problems found; a mismatch is not checked for where the segment is damaged."""
        hint = self.hint
        if hint is None or segment_damaged:
            return self.problems
        special = {i: (DELETE, NO_EXPIRY) for i in hint.deletes}
        special.update((i, (PUT, expires_at)) for i, expires_at in hint.expiring.items())
        if (
            list(hint.keys) != self.keys
            or list(hint.seqs) != self.seqs
            or list(hint.sizes) != self.sizes
            or list(hint.offsets()) != self.offsets
            or special != self.special
        ):
            self._problem("hint-mismatch", self._first_difference(hint))
        return self.problems

    def _first_difference(self, hint: Hint) -> str:
        """Where the hint and the segment first disagree, for the report."""
        pairs = itertools.zip_longest(hint.records(), self._walked())
        for i, (entry, record) in enumerate(pairs):
            if entry != record:
                return f"entry {i} says {_show(entry)}, the segment holds {_show(record)}"
        raise AssertionError("the columns differ, so some entry does")

    def _walked(self) -> Iterator[ScannedRecord]:
        """The noted records again, as the walk yielded them."""
        rows = zip(self.offsets, self.sizes, self.seqs, self.keys, strict=True)
        for i, (offset, size, seq, key) in enumerate(rows):
            rtype, expires_at = self.special.get(i, (PUT, NO_EXPIRY))
            yield offset, size, rtype, seq, expires_at, key


def _show(record: ScannedRecord | None) -> str:
    if record is None:
        return "nothing"
    offset, size, rtype, seq, expires_at, key = record
    expiry = f", expires at {expires_at}" if expires_at else ""
    name = RecordType(rtype).name
    return f"{name} seq {seq} key {show_bytes(key)!r} at offset {offset} ({size} bytes{expiry})"
