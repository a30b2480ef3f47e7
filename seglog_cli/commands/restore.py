"""``seglog restore BACKUP_DIR [--id N] DEST``: make a working store from a backup."""

from __future__ import annotations

import argparse
import os
import time

from seglog_cli.commands._common import (
    OK,
    USAGE,
    Refusal,
    add_common,
    console,
    human_size,
    print_json,
    progress_bar,
)

DESCRIPTION = """\
Copy backup N (the newest complete one without --id) from BACKUP_DIR into
DEST, which must be missing or empty. Every file is copied (none linked, so
nothing done to the new store can reach the backup) and checked against the
backup's CRC32C listing; until the copy is complete and durable DEST holds a
CHECKPOINT-INCOMPLETE marker, and opening it is refused.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "restore",
        help="make a working store from a backup",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("backups", metavar="BACKUP_DIR", help="the directory of backups")
    parser.add_argument("dest", metavar="DEST", help="the new store (missing or empty)")
    parser.add_argument("--id", type=int, metavar="N", help="the backup to restore")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser, run)


def run(args: argparse.Namespace) -> int:
    from engine.backups import BackupSet

    backups = BackupSet(args.backups)
    if not os.path.isdir(backups.path):
        raise Refusal(USAGE, f"{backups.path}: no such directory")
    started = time.perf_counter()
    try:
        chosen = backups.get(args.id) if args.id is not None else backups.latest()
        if chosen is None:
            raise Refusal(USAGE, f"{backups.path}: no complete backup to restore")
        with progress_bar(chosen.bytes, "restore", args.no_progress) as advance:
            backup = backups.restore(chosen.id, args.dest, progress=advance)
    except ValueError as exc:
        raise Refusal(USAGE, str(exc)) from None
    document = {
        "backup": backup.as_dict(),
        "dest": os.path.abspath(args.dest),
        "seconds": round(time.perf_counter() - started, 6),
    }
    if args.json:
        print_json(document)
    else:
        console().print(
            f"restored backup {backup.id} ({backup.as_dict()['files']} files, "
            f"{human_size(backup.bytes)}) into {document['dest']} "
            f"in {document['seconds']:.2f} s"
        )
    return OK
