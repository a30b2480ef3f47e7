"""``seglog stats DIR``: keys, live and dead bytes, segments, compaction, recovery, memory."""

from __future__ import annotations

import argparse
import os
import time
from datetime import datetime
from typing import Any

from engine.manifest import MANIFEST
from engine.segment import COMPACTED_SUFFIX
from seglog_cli.commands._common import OK, add_common, console, human_size, open_engine, print_json

DESCRIPTION = """\
Open the store as the application would (recovering it: a torn tail left by a
crash is cut, and logged) and show what is in it: keys, live and dead bytes per
segment, what recovery found, the last compaction, and how much memory the open
store holds. A human table by default; --json for scripts.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stats", help="keys, bytes, segments, recovery and memory", description=DESCRIPTION
    )
    parser.add_argument("directory", metavar="DIR", help="the store directory")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_common(parser, run)


def _resident_bytes() -> int | None:
    """This process's resident memory (Linux ``/proc``), or None where unavailable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def collect(directory: str) -> dict[str, Any]:
    """The engine's stats, the time the open took and the resident memory it added.

    Resident memory rather than a heap trace: it is what the application will
    pay (index, allocator slack and all), and measuring it costs nothing,
    where ``tracemalloc`` would make the open several times slower.
    """
    before = _resident_bytes()
    started = time.perf_counter()
    with open_engine(directory, or_readonly=True) as db:
        opened = time.perf_counter() - started
        after = _resident_bytes()
        stats: dict[str, Any] = dict(db.stats())
    stats["open_seconds"] = round(opened, 6)
    stats["open_memory_bytes"] = None if before is None or after is None else after - before
    stats["last_compaction_at"] = _committed_at(directory)
    return stats


def _committed_at(directory: str) -> float | None:
    """When the last compaction committed: the manifest is replaced at exactly that moment."""
    try:
        return os.path.getmtime(os.path.join(directory, MANIFEST))
    except FileNotFoundError:
        return None


def run(args: argparse.Namespace) -> int:
    stats = collect(args.directory)
    if args.json:
        print_json(stats)
    else:
        _print(stats)
    return OK


def _print(stats: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    summary = Table("", "", show_header=False, title=stats["path"])
    rows: list[tuple[str, str]] = [
        ("keys", f"{stats['keys']:,} ({stats['expiring_keys']:,} expiring)"),
        ("disk", f"{human_size(stats['disk_bytes'])} ({human_size(stats['free_bytes'])} free)"),
        ("live", human_size(stats["live_bytes"])),
        ("dead (reclaimable)", _share(stats["dead_bytes"], stats["disk_bytes"])),
        ("segments", f"{stats['segment_count']} (active {stats['active_segment']})"),
        ("sequence", f"{stats['sequence']:,}"),
        ("open took", f"{stats['open_seconds']:.3f} s"),
    ]
    if stats["open_memory_bytes"] is not None:
        rows.append(("memory (RSS growth on open)", human_size(stats["open_memory_bytes"])))
    rows.extend(_recovery_rows(stats["recovery"]))
    rows.append(("last compaction", _compaction_text(stats)))
    for name, value in rows:
        summary.add_row(name, value)
    out.print(summary)
    segments = Table("segment", "bytes", "dead bytes", "dead", title="segments")
    for name, segment in stats["segments"].items():
        size, dead = segment["bytes"], segment["dead_bytes"]
        segments.add_row(name, f"{size:,}", f"{dead:,}", f"{dead / size:.0%}" if size else "-")
    out.print(segments)


def _share(part: int, whole: int) -> str:
    return f"{human_size(part)} ({part / whole:.0%})" if whole else human_size(part)


def _recovery_rows(recovery: dict[str, Any]) -> list[tuple[str, str]]:
    """What recovery did on this open, as table rows."""
    rows = [
        (
            "recovery",
            f"{recovery['records']:,} records in {recovery['segments']} segments "
            f"({recovery['mode']})",
        )
    ]
    for what in ("truncated_bytes", "skipped_bytes", "incomplete_batches"):
        if recovery.get(what):
            rows.append((f"  {what.replace('_', ' ')}", f"{recovery[what]:,}"))
    rows.extend(("  damage", line) for line in recovery.get("damage", []))
    rows.extend(("  quarantined", n) for n in recovery.get("quarantined_segments", []))
    return rows


def _compaction_text(stats: dict[str, Any]) -> str:
    """When the last compaction committed, and the compacted segments it left."""
    at = stats["last_compaction_at"]
    if at is None:
        return "never"
    compacted = sum(1 for name in stats["segments"] if name.endswith(COMPACTED_SUFFIX))
    when = datetime.fromtimestamp(at).astimezone().isoformat(sep=" ", timespec="seconds")
    return f"{when} ({compacted} compacted segments now)"
