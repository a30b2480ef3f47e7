"""``seglog compact DIR``: rewrite sealed segments without their dead records."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from seglog_cli.commands._common import (
    FAILED,
    OK,
    Refusal,
    add_common,
    console,
    human_size,
    open_engine,
    print_json,
)

DESCRIPTION = """\
Open the store (recovering it as the application would), compact it with the
engine's own compaction, and report what was reclaimed.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "compact", help="reclaim the space of dead records", description=DESCRIPTION
    )
    parser.add_argument("directory", metavar="DIR", help="the store directory")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    add_common(parser, run)


def run(args: argparse.Namespace) -> int:
    with open_engine(args.directory) as db:
        compact = getattr(db, "compact", None)
        if compact is None:
            raise Refusal(FAILED, "this version of the engine has no compaction")
        before = db.stats()
        outcome = compact()
        after = db.stats()
    report = {
        "path": before["path"],
        "disk_bytes_before": before["disk_bytes"],
        "disk_bytes_after": after["disk_bytes"],
        "segments_before": before["segment_count"],
        "segments_after": after["segment_count"],
        "report": _as_dict(outcome),
    }
    if args.json:
        print_json(report)
    else:
        _print(report)
    return OK


def _as_dict(outcome: Any) -> Any:
    """The engine's compaction report as JSON-ready data."""
    if dataclasses.is_dataclass(outcome) and not isinstance(outcome, type):
        return dataclasses.asdict(outcome)
    return outcome


def _print(report: dict[str, Any]) -> None:
    from rich.table import Table

    out = console()
    before, after = report["disk_bytes_before"], report["disk_bytes_after"]
    out.print(
        f"{report['path']}: {human_size(before)} in {report['segments_before']} segments -> "
        f"{human_size(after)} in {report['segments_after']} segments "
        f"({human_size(before - after)} reclaimed)"
    )
    details = report["report"]
    if not isinstance(details, dict):
        return
    table = Table("", "", show_header=False)
    for name, value in details.items():
        if isinstance(value, list):
            shown = f" ({', '.join(value)})" if 0 < len(value) <= 4 else ""
            value = f"{len(value)}{shown}"
        elif isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(name.replace("_", " "), str(value))
    out.print(table)
