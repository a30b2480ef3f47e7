"""``seglog backup SRC BACKUP_DIR``: numbered, incremental backups; ``--verify`` checks them.

The store is read as ``verify`` reads it: under its owner lock, without
opening it through the engine (which would repair it), so a backup changes
nothing in the store. A store held by a live process is refused: checkpoint
it from inside that process (``Engine.checkpoint``, ``LogStore.checkpoint``
or ``engine.backups.BackupSet.back_up``); several processes cannot share a
store yet.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from engine.backups import Backup, BackupReport, BackupSet
from engine.checkpoint import SourceFile
from engine.hints import hint_name
from engine.manifest import MANIFEST
from engine.segment import segment_name
from seglog_cli.commands._common import (
    DAMAGED,
    LOCKED,
    OK,
    USAGE,
    Refusal,
    add_common,
    console,
    human_size,
    owner_lock,
    print_json,
    progress_bar,
    require_store,
)
from seglog_cli.commands._layout import Layout, read_layout
from seglog_cli.commands.verify import verify

DESCRIPTION = """\
Add a backup of the store SRC to BACKUP_DIR, numbered after the ones there.
Backups share the files they have in common by hard links, so a store that
gained one segment costs one segment. --keep N then deletes all but the
newest N. --verify checks every backup in BACKUP_DIR (each file's CRC32C
against the backup's listing, and every record, hint and manifest as
`seglog verify` does); without SRC it only verifies. --list lists them.
SRC must not be open in another process.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "backup",
        help="add an incremental backup of a store; --verify checks every backup",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", nargs="?", help="the store to back up")
    parser.add_argument("backups", metavar="BACKUP_DIR", help="the directory of backups")
    parser.add_argument("--keep", type=int, metavar="N", help="then keep only the newest N")
    parser.add_argument("--verify", action="store_true", help="check every backup")
    parser.add_argument("--list", action="store_true", help="list the backups")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser, run)


def run(args: argparse.Namespace) -> int:
    if args.keep is not None and args.keep < 1:
        raise Refusal(USAGE, f"--keep must be at least 1, not {args.keep}")
    if args.source is None and not (args.verify or args.list):
        raise Refusal(USAGE, "give SRC to back up, or --verify/--list to look at the backups")
    if args.source is None and args.keep is not None:
        raise Refusal(USAGE, "--keep prunes after a backup: give SRC")
    backups = BackupSet(args.backups)
    if args.source is not None:
        inside = os.path.relpath(backups.path, os.path.abspath(args.source))
        if inside.split(os.sep)[0] != os.pardir:
            raise Refusal(USAGE, f"{backups.path}: inside the store {args.source}")
    document: dict[str, Any] = {"path": backups.path}
    status = OK
    if args.source is not None:
        try:
            report = back_up(args.source, backups, no_progress=args.no_progress)
            if args.keep is not None:
                report.pruned = backups.prune(args.keep)
        except ValueError as exc:
            raise Refusal(USAGE, str(exc)) from None
        document["added"] = report.as_dict()
    elif not os.path.isdir(backups.path):
        raise Refusal(USAGE, f"{backups.path}: no such directory")
    if args.verify:
        checks = [check_backup(backups, b) for b in backups.backups()]
        document["verified"] = checks
        if not all(check["healthy"] for check in checks):
            status = DAMAGED
    document["backups"] = [b.as_dict() for b in backups.backups()]
    document["incomplete"] = backups.incomplete()
    if args.json:
        print_json(document)
    else:
        _print(document, listing=args.list)
    return status


def back_up(source: str, backups: BackupSet, *, no_progress: bool) -> BackupReport:
    """Back up the closed store at ``source``, reading its files under its owner lock."""
    from engine import LockedError

    require_store(source)
    try:
        with owner_lock(source):
            layout = read_layout(source)
            if layout.problems:
                raise Refusal(
                    DAMAGED,
                    f"{source}: {layout.problems[0]}; see `seglog verify` and `seglog repair`",
                )
            files = store_files(source, layout)
            total = sum(f.size for f in files)
            with progress_bar(total, "backup", no_progress) as advance:
                return backups.back_up_files(source, files, progress=advance)
    except LockedError as exc:
        if os.path.abspath(exc.path) != os.path.abspath(source):
            raise  # the backup directory's own lock: another backup is running
        raise Refusal(
            LOCKED,
            f"{source}: held by a live process. Back it up from inside that process "
            "(Engine.checkpoint or LogStore.checkpoint); several processes cannot share "
            "a store yet",
        ) from None


def store_files(directory: str, layout: Layout) -> list[SourceFile]:
    """The files recovery would read, as they are: the newest log segment copied, the rest linked.

    The newest log segment is the only file an open appends to (and recovery
    may cut), so it is never shared with a backup.
    """
    files = []
    newest = layout.logs[-1] if layout.logs else None
    for segment_id in layout.segments:
        name = segment_name(segment_id)
        size = os.path.getsize(os.path.join(directory, name))
        files.append(SourceFile(name, size, linkable=segment_id != newest))
        hint = hint_name(segment_id)
        if segment_id in layout.compacted and os.path.exists(os.path.join(directory, hint)):
            files.append(SourceFile(hint, os.path.getsize(os.path.join(directory, hint)), True))
    if layout.manifest is not None:
        size = os.path.getsize(os.path.join(directory, MANIFEST))
        files.append(SourceFile(MANIFEST, size, linkable=False))
    return files


def check_backup(backups: BackupSet, backup: Backup) -> dict[str, Any]:
    """One backup's files against its listing, then every record as ``seglog verify`` checks."""
    problems = backups.check(backup)
    report = verify(backup.path, read_layout(backup.path), locked=False)
    problems += [str(p) for p in report.problems]
    return {
        "id": backup.id,
        "healthy": not problems,
        "records": report.records,
        "bytes": report.bytes,
        "problems": problems,
        "notes": report.notes,
    }


def _print(document: dict[str, Any], *, listing: bool) -> None:
    out = console()
    added = document.get("added")
    if added is not None:
        backup = added["backup"]
        out.print(
            f"backup {backup['id']} of {backup['source']}: {backup['files']} files, "
            f"{human_size(backup['bytes'])}; {added['files_linked']} linked, "
            f"{added['files_copied']} copied ({human_size(added['bytes_copied'])}) "
            f"in {added['seconds']:.2f} s"
        )
        if added["pruned"]:
            out.print(f"pruned backups {', '.join(map(str, added['pruned']))}")
    if listing:
        from rich.table import Table

        table = Table("id", "created (Unix time)", "sequence", "files", "bytes")
        for b in document["backups"]:
            sequence = "-" if b["sequence"] is None else str(b["sequence"])
            table.add_row(
                str(b["id"]), f"{b['created']:.0f}", sequence, str(b["files"]), f"{b['bytes']:,}"
            )
        out.print(table)
    for check in document.get("verified", []):
        state = "healthy" if check["healthy"] else "DAMAGED"
        out.print(f"backup {check['id']}: {check['records']:,} records, {state}")
        for problem in check["problems"]:
            out.print(f"  DAMAGE: {problem}")
    if document["incomplete"]:
        ids = ", ".join(map(str, document["incomplete"]))
        out.print(f"incomplete (cut short; never restored, pruned next): {ids}")
