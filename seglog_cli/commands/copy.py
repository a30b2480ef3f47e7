"""``seglog copy SRC DST``: every store_api table from one store to another.

Each of SRC and DST is a store directory (``LogStore``) or a ``postgresql://``
URL (``PostgresStore``), so this is how an application moves from embedded to
networked and back. Records keep their metadata and their remaining lifetime.
Writes are upserts, so an interrupted copy is finished by running it again; at
the end every source key must be in the destination, or the command fails.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Protocol

from seglog_cli.commands._common import (
    FAILED,
    OK,
    USAGE,
    Advance,
    Refusal,
    add_common,
    progress_bar,
    require_new_or_store,
    require_store,
)
from store_api import Record, Store
from store_api.factory import POSTGRES_SCHEMES

DESCRIPTION = """\
Copy every store_api database and table (or those chosen with --database and
--table) from SRC to DST. Each is a store directory or a postgresql:// URL.
Metadata and remaining lifetimes are kept; expired records are not copied.
Safe to run again: records are upserted, and what DST already holds elsewhere
stays. At the end every key of SRC must be in DST, or the exit status is 6.
"""

#: Records between two progress bar updates.
PROGRESS_EVERY = 1000


class CopyableStore(Protocol):
    """What both backends offer beyond the Store contract for whole-table copies."""

    def namespaces(self) -> list[tuple[str, str]]: ...

    def records(self, *, database: str = "", table: str = "") -> Iterator[Record]: ...

    def write_many(
        self, records: Iterable[Record], *, database: str = "", table: str = ""
    ) -> int: ...

    def list(
        self,
        *,
        database: str = "",
        table: str = "",
        prefix: str = "",
        suffix: str = "",
        limit: int = 0,
        offset: int = 0,
    ) -> list[str]: ...


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "copy",
        help="copy store_api tables between store directories and PostgreSQL",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("source", metavar="SRC", help="a store directory or postgresql:// URL")
    parser.add_argument("destination", metavar="DST", help="the same kinds; created if missing")
    parser.add_argument("--database", action="append", help="copy only this database (repeatable)")
    parser.add_argument("--table", action="append", help="copy only this table (repeatable)")
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="seconds a PostgreSQL call may take (30)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_common(parser, run)


@contextmanager
def open_endpoint(location: str, *, create: bool, timeout: float) -> Iterator[CopyableStore]:
    """The store at ``location`` (a directory or a URL), disconnected after."""
    store: Store | CopyableStore
    if location.startswith(POSTGRES_SCHEMES):
        try:
            from store_api.postgres import PostgresStore
        except ImportError as exc:
            raise Refusal(USAGE, f"{exc}; pip install 'seglog[postgres]'") from None
        store = PostgresStore(location, timeout=timeout, reap_interval=0)
    else:
        from store_api import LogStore

        (require_new_or_store if create else require_store)(location)
        store = LogStore(location, sync="none", auto_compact=False)
    try:
        yield store
    finally:
        store.disconnect()


def run(args: argparse.Namespace) -> int:
    if args.source == args.destination:
        raise Refusal(USAGE, "SRC and DST are the same store")
    with ExitStack() as stack:
        source = stack.enter_context(open_endpoint(args.source, create=False, timeout=args.timeout))
        target = stack.enter_context(
            open_endpoint(args.destination, create=True, timeout=args.timeout)
        )
        spaces = [
            (database, table)
            for database, table in source.namespaces()
            if (not args.database or database in args.database)
            and (not args.table or table in args.table)
        ]
        sizes = {space: len(source.list(database=space[0], table=space[1])) for space in spaces}
        copied = 0
        with progress_bar(sum(sizes.values()), "copy", args.no_progress, counting="records") as bar:
            for database, table in spaces:
                records = counted(source.records(database=database, table=table), copied, bar)
                copied += target.write_many(records, database=database, table=table)
        missing = check(source, target, spaces)
    if missing:
        raise Refusal(FAILED, f"{missing} source keys are missing from {args.destination}")
    print(f"copied {copied} records in {len(spaces)} tables", file=sys.stderr)
    return OK


def counted(records: Iterator[Record], start: int, advance: Advance | None) -> Iterator[Record]:
    """``records``, moving the progress bar every ``PROGRESS_EVERY`` of them."""
    if advance is None:
        yield from records
        return
    done = start
    for record in records:
        yield record
        done += 1
        if done % PROGRESS_EVERY == 0:
            advance(done)


def check(source: CopyableStore, target: CopyableStore, spaces: list[tuple[str, str]]) -> int:
    """How many keys live in ``source`` are not in ``target`` (listed after the copy)."""
    missing = 0
    for database, table in spaces:
        there = set(target.list(database=database, table=table))
        missing += sum(key not in there for key in source.list(database=database, table=table))
    return missing
