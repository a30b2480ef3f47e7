"""``seglog repair DIR --into NEWDIR``: salvage every intact record into a new store.

The damaged store is only read (through the same read-only walk as
``verify``, under its owner lock), never modified. For every key the record
with the highest sequence number found intact wins; if that is a delete, or
has expired, the key is left out. Batches count only with their commit marker,
as in recovery. The report lists each damaged region and, for every record the
damage hit whose header still names its key, what became of that key.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Final

from engine import Engine
from engine.format import NO_EXPIRY, RecordType, decode_record_at
from engine.location import SEGMENT_SHIFT, pack_location, unpack_location
from engine.segment import segment_name
from seglog_cli.commands._common import (
    DAMAGED,
    OK,
    PROGRESS_STEP,
    USAGE,
    Advance,
    Refusal,
    add_common,
    console,
    owner_lock,
    print_json,
    progress_bar,
    render_bytes,
    require_store,
    show_bytes,
)
from seglog_cli.commands._layout import Layout, read_layout
from seglog_cli.commands._walk import Damage, SegmentWalk, read_file

DESCRIPTION = """\
Salvage every intact record of a damaged store into a new store at NEWDIR
(missing or empty), and report what was lost. The damaged store is never
modified. Reads past damage byte by byte; the newest intact record of a key
wins; deleted and expired keys stay deleted. Exit status 0 if nothing was
lost, 1 if the new store was written but some records were lost.
"""

#: Affected keys listed in the human report (``--json`` lists them all).
SHOWN_KEYS: Final = 20
_PUTS: Final = (int(RecordType.PUT), int(RecordType.BATCH_PUT))
_COMMIT: Final = int(RecordType.BATCH_COMMIT)

#: The winning record of a key: its seq and packed location, or one of these for a removal.
Winner = tuple[int, int]
_DELETED: Final = -1
_EXPIRED: Final = -2


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "repair",
        help="salvage every intact record into a new store; report what was lost",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="the damaged store (only read)")
    parser.add_argument("--into", required=True, metavar="NEWDIR", help="the new store")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser, run)


@dataclass
class RepairReport:
    """What was read, written and lost."""

    source: str
    into: str
    records: int = 0
    keys: int = 0
    deleted: int = 0
    expired: int = 0
    damage: list[Damage] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: key, seq, where and outcome of every damaged record whose header names its key.
    affected: list[tuple[bytes, int, str, str]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def lost(self) -> bool:
        return bool(self.damage)

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document."""
        return {
            "source": self.source,
            "into": self.into,
            "complete": not self.lost,
            "records_read": self.records,
            "keys_written": self.keys,
            "deleted_keys": self.deleted,
            "expired_keys": self.expired,
            "damaged_bytes": sum(d.length for d in self.damage),
            "damage": [d.as_dict() for d in self.damage],
            "notes": self.notes,
            "affected_keys": [
                {"key": render_bytes(key), "seq": seq, "where": where, "outcome": outcome}
                for key, seq, where, outcome in self.affected
            ],
            "seconds": round(self.seconds, 6),
        }


def run(args: argparse.Namespace) -> int:
    source, into = args.directory, args.into
    require_store(source)
    if os.path.realpath(source) == os.path.realpath(into):
        raise Refusal(USAGE, "--into must be a new directory, not the damaged store")
    if os.path.exists(into) and not (os.path.isdir(into) and not os.listdir(into)):
        raise Refusal(USAGE, f"{into}: must be missing or an empty directory")
    with owner_lock(source):
        layout = read_layout(source)
        with progress_bar(layout.size(source), "repair", args.no_progress) as advance:
            report = repair(source, into, layout, now=time.time(), advance=advance)
    if args.json:
        print_json(report.as_dict())
    else:
        _print(report)
    return DAMAGED if report.lost else OK


def repair(
    source: str, into: str, layout: Layout, *, now: float, advance: Advance | None = None
) -> RepairReport:
    """Salvage ``source`` (lock held, only read) into a new store at ``into``."""
    started = time.perf_counter()
    report = RepairReport(os.path.abspath(source), os.path.abspath(into))
    report.damage.extend(layout.problems)
    report.notes.extend(layout.notes)
    winners = _collect(source, layout, report, now, advance)
    report.affected = _affected(report.damage, winners)
    by_segment: dict[int, list[int]] = defaultdict(list)
    for _seq, location in winners.values():
        if location == _DELETED:
            report.deleted += 1
        elif location == _EXPIRED:
            report.expired += 1
        else:
            by_segment[location >> SEGMENT_SHIFT].append(location)
    del winners  # before the new store builds an index of its own
    with Engine.open(into, sync="none") as db:
        for segment_id, locations in sorted(by_segment.items()):
            data = read_file(source, segment_name(segment_id))
            for location in locations:
                decoded = decode_record_at(data, unpack_location(location)[1])
                assert decoded is not None, "a record the walk found intact"
                record = decoded[0]
                db.put(record.key, record.value, expires_at=record.expires_at or None)
            report.keys += len(locations)
    report.seconds = time.perf_counter() - started
    return report


def _collect(
    source: str, layout: Layout, report: RepairReport, now: float, advance: Advance | None
) -> dict[bytes, Winner]:
    """The newest intact record of every key, and every damaged region, into ``report``."""
    winners: dict[bytes, Winner] = {}
    newest = layout.logs[-1] if layout.logs else None
    done = 0
    for segment_id in layout.segments:
        name = segment_name(segment_id)
        data = read_file(source, name)
        walk = SegmentWalk(name, data, newest=segment_id == newest)
        tick = PROGRESS_STEP
        for offset, size, rtype, seq, expires_at, key in walk:
            if advance is not None and offset >= tick:
                advance(done + offset)
                tick = offset + PROGRESS_STEP
            if rtype == _COMMIT:
                continue
            known = winners.get(key)
            if known is None or known[0] < seq:
                if rtype not in _PUTS:
                    location = _DELETED
                elif expires_at != NO_EXPIRY and expires_at <= now:
                    location = _EXPIRED
                else:
                    location = pack_location(segment_id, offset, size)
                winners[key] = (seq, location)
        done += len(data)
        report.records += walk.records
        report.damage.extend(walk.damage)
    return winners


def _affected(
    damage: list[Damage], winners: dict[bytes, Winner]
) -> list[tuple[bytes, int, str, str]]:
    """For each key a damaged record names, what the new store holds for it instead."""
    affected = []
    for region in damage:
        for key, seq in region.claims:
            winner = winners.get(key)
            if winner is None:
                outcome = "lost: no intact record of this key"
            elif winner[0] > seq:
                outcome = f"unaffected: a newer intact record (seq {winner[0]}) supersedes it"
            elif winner[1] == _DELETED:
                outcome = f"an older delete (seq {winner[0]}) stands: the key is absent"
            elif winner[1] == _EXPIRED:
                outcome = f"an older value (seq {winner[0]}) has expired: the key is absent"
            else:
                outcome = f"older value salvaged (seq {winner[0]}): the damaged one may be newer"
            affected.append((key, seq, f"{region.file} at offset {region.offset}", outcome))
    return affected


def _print(report: RepairReport) -> None:
    out = console()
    out.print(
        f"{report.source} -> {report.into}: {report.records:,} intact records read, "
        f"{report.keys:,} keys written ({report.deleted:,} deleted and "
        f"{report.expired:,} expired keys left out) in {report.seconds:.2f} s"
    )
    for note in report.notes:
        out.print(f"note: {note}")
    for region in report.damage:
        out.print(f"LOST: {region}")
    for key, seq, where, outcome in report.affected[:SHOWN_KEYS]:
        out.print(f"  key {show_bytes(key)!r} (seq {seq}, {where}): {outcome}")
    if len(report.affected) > SHOWN_KEYS:
        out.print(f"  ... and {len(report.affected) - SHOWN_KEYS:,} more keys (see --json)")
    out.print("complete: nothing lost" if not report.lost else "incomplete: see LOST above")
