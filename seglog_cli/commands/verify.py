"""``seglog verify DIR``: check every record's CRC without modifying anything.

The files are opened read-only here, never through ``Engine.open`` (which
repairs a torn tail). The owner lock is held meanwhile if it is free; a store
that a live process owns is checked as it is at that moment: the check starts
again if a compaction replaces files under it, and damage counts only if a
second look finds it too (the owner's record in flight is not damage).
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from typing import Any

from engine.errors import LockedError, StorageError
from engine.segment import segment_name
from seglog_cli.commands._common import (
    DAMAGED,
    OK,
    PROGRESS_STEP,
    Advance,
    add_common,
    console,
    human_size,
    owner_lock,
    print_json,
    progress_bar,
    require_store,
)
from seglog_cli.commands._hintcheck import HintCheck
from seglog_cli.commands._layout import Layout, read_layout
from seglog_cli.commands._walk import SegmentWalk, read_file

#: How often ``verify_live`` looks again at files that changed or looked damaged.
LIVE_ATTEMPTS = 3

DESCRIPTION = """\
Check, without modifying anything, the files recovery would replay: MANIFEST,
every segment header, every record's CRC, batch structure, and every compacted
segment's hint entry by entry. Report each damaged region: file, offset,
length, kind, and what it held as far as its header can tell. Holds the
store's lock meanwhile if it is free; a store open in another process is
checked as it is at that moment. Exit status 0 only for a healthy store; 1 if
anything is damaged.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="check every record's CRC; exit 0 only if the store is healthy",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="the store directory")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser, run)


@dataclass
class SegmentCheck:
    """What verify found in one segment file."""

    file: str
    bytes: int
    records: int
    unused_bytes: int
    damaged: bool


@dataclass
class VerifyReport:
    """Everything ``verify`` checked and found; ``healthy`` iff no problem."""

    path: str
    locked: bool
    segments: list[SegmentCheck] = field(default_factory=list)
    problems: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def healthy(self) -> bool:
        return not self.problems

    @property
    def bytes(self) -> int:
        return sum(s.bytes for s in self.segments)

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        rate = self.bytes / self.seconds / (1 << 20) if self.seconds else 0.0
        return {
            "path": self.path,
            "healthy": self.healthy,
            "locked": self.locked,
            "bytes": self.bytes,
            "records": self.records,
            "seconds": round(self.seconds, 6),
            "mib_per_second": round(rate, 1),
            "segments": [vars(s) for s in self.segments],
            "problems": [p.as_dict() for p in self.problems],
            "notes": self.notes,
        }


def run(args: argparse.Namespace) -> int:
    directory = args.directory
    require_store(directory)
    try:
        with owner_lock(directory) as locked:
            layout = read_layout(directory)
            with progress_bar(layout.size(directory), "verify", args.no_progress) as advance:
                report = verify(directory, layout, locked=locked, advance=advance)
    except LockedError:
        report = verify_live(directory)
    if args.json:
        print_json(report.as_dict())
    else:
        _print(report)
    return OK if report.healthy else DAMAGED


def verify(
    directory: str, layout: Layout, *, locked: bool, advance: Advance | None = None
) -> VerifyReport:
    """Check every file of the store at ``directory`` (lock already held); modifies nothing."""
    started = time.perf_counter()
    report = VerifyReport(os.path.abspath(directory), locked)
    report.problems.extend(layout.problems)
    report.notes.extend(layout.notes)
    newest = layout.logs[-1] if layout.logs else None
    done = 0
    for segment_id in layout.segments:
        name = segment_name(segment_id)
        data = read_file(directory, name)
        walk = SegmentWalk(name, data, newest=segment_id == newest)
        hint = HintCheck(directory, segment_id, len(data))
        tick = PROGRESS_STEP
        for record in walk:
            hint.check(record)
            if advance is not None and record[0] >= tick:
                advance(done + record[0])
                tick = record[0] + PROGRESS_STEP
        done += len(data)
        if advance is not None:
            advance(done)
        report.problems.extend(walk.damage)
        report.problems.extend(hint.finish(segment_damaged=bool(walk.damage)))
        if hint.stale is not None:
            report.notes.append(hint.stale)
        report.segments.append(
            SegmentCheck(name, len(data), walk.records, walk.unused, bool(walk.damage))
        )
        if walk.unused and not walk.damage:
            report.notes.append(
                f"{name}: {walk.unused} bytes of preallocated space after the last record "
                "(the store was not closed cleanly; opening it trims them)"
            )
    if not layout.segments:
        report.notes.append("no segments: the store is empty")
    report.seconds = time.perf_counter() - started
    return report


def verify_live(directory: str) -> VerifyReport:
    """``verify`` beside the process that owns the store, while it writes and compacts."""
    report: VerifyReport | None = None
    for _attempt in range(LIVE_ATTEMPTS):
        try:
            report = verify(directory, read_layout(directory), locked=False)
        except FileNotFoundError:
            continue  # a compaction committed and deleted its inputs meanwhile
        if report.healthy:
            break
    if report is None:
        raise StorageError(f"{directory}: files kept changing while they were verified")
    report.notes.append(
        "the store is open in another process: checked as it was at this moment "
        "(records written meanwhile are not covered)"
    )
    return report


def _print(report: VerifyReport) -> None:
    from rich.table import Table

    out = console()
    rate = report.bytes / report.seconds if report.seconds else 0.0
    out.print(
        f"{report.path}: {len(report.segments)} segments, {report.records:,} records, "
        f"{human_size(report.bytes)} checked in {report.seconds:.2f} s ({human_size(rate)}/s)"
    )
    if report.segments:
        table = Table("segment", "bytes", "records", "status")
        for s in report.segments:
            table.add_row(
                s.file, f"{s.bytes:,}", f"{s.records:,}", "DAMAGED" if s.damaged else "ok"
            )
        out.print(table)
    for note in report.notes:
        out.print(f"note: {note}")
    for problem in report.problems:
        out.print(f"DAMAGE: {problem}")
    if report.healthy:
        out.print("healthy")
    else:
        out.print(f"DAMAGED: {len(report.problems)} problem(s)")
