"""What every operating subcommand shares: exit codes, refusals, store checks, byte rendering.

Every command refuses with one line on stderr and a documented exit status
(docs/OPERATIONS.md), never a traceback, when the directory is not a seglog
store, when a live process holds it, or when it is damaged.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import errno
import fcntl
import functools
import io
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Final

from engine.segment import LOCK_FILE, SEGMENT_SUFFIX
from store_api.options import DEFAULT_NAMESPACE

if TYPE_CHECKING:
    from rich.console import Console

    from engine import Engine
    from store_api import LogStore

#: Exit statuses, the same for every operating subcommand (argparse uses 2 for usage errors).
OK: Final = 0
DAMAGED: Final = 1
USAGE: Final = 2
NOT_A_STORE: Final = 3
LOCKED: Final = 4
NOT_FOUND: Final = 5
FAILED: Final = 6


Run = Callable[[argparse.Namespace], int]
#: Told the number of bytes done so far.
Advance = Callable[[int], None]

#: Stores at least this large get a progress bar (on a terminal).
PROGRESS_THRESHOLD: Final = 32 << 20
#: Item-counting progress bars (``seglog copy``) show from this many items.
PROGRESS_ITEMS: Final = 10_000
#: How often (in bytes scanned) a progress bar moves.
PROGRESS_STEP: Final = 4 << 20


class Refusal(Exception):
    """A command cannot go on: one line for stderr and the exit status to return."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def refusing(name: str, run: Run) -> Run:
    """Wrap ``run`` so that every expected failure becomes one line and an exit status."""
    from engine import CorruptionError, LockedError, StorageError

    @functools.wraps(run)
    def guarded(args: argparse.Namespace) -> int:
        setup_logging(getattr(args, "verbose", 0))
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(errors="backslashreplace")
        try:
            return run(args)
        except BrokenPipeError:
            # The reader went away (``seglog dump DIR | head``): not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return OK
        except Refusal as exc:
            status, message = exc.status, str(exc)
        except LockedError as exc:
            status, message = LOCKED, f"{exc.path}: held by a live process; stop it first"
        except CorruptionError as exc:
            status = DAMAGED
            message = (
                f"the store is damaged: {exc}. See `seglog verify` for a full report "
                "and `seglog repair DIR --into NEWDIR` to salvage it"
            )
        except StorageError as exc:
            status, message = FAILED, str(exc)
        except ValueError as exc:  # an argument the store refuses: an empty or oversized key
            status, message = USAGE, str(exc)
        except OSError as exc:
            status, message = FAILED, f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": ")
        print(f"seglog {name}: {message}", file=sys.stderr)
        return status

    return guarded


def add_common(parser: argparse.ArgumentParser, run: Run) -> None:
    """The options every operating subcommand takes, and its wrapped entry point."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="log engine events (twice: debug)"
    )
    parser.set_defaults(func=refusing(parser.prog.split()[-1], run))


def setup_logging(verbose: int) -> None:
    """Engine log records to stderr: warnings always, info with -v, debug with -vv."""
    level = logging.WARNING if not verbose else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="seglog: %(levelname)s: %(name)s: %(message)s")


# ----------------------------------------------------------------- the store


def require_store(path: str) -> None:
    """Refuse unless ``path`` is a directory holding a seglog store (a LOCK file or segments)."""
    if not os.path.exists(path):
        raise Refusal(NOT_A_STORE, f"{path}: no such directory")
    if not os.path.isdir(path):
        raise Refusal(NOT_A_STORE, f"{path}: not a directory")
    names = os.listdir(path)
    if LOCK_FILE not in names and not any(n.endswith(SEGMENT_SUFFIX) for n in names):
        raise Refusal(NOT_A_STORE, f"{path}: not a seglog store (no LOCK file, no segments)")


@contextmanager
def owner_lock(path: str) -> Iterator[bool]:
    """Hold the store's owner lock without creating anything; yield whether a LOCK file exists.

    The lock file is opened read-only (``flock`` needs no write access), so a
    read-only store can be checked; a store without a LOCK file has no owner.
    """
    from engine import LockedError

    try:
        fd = os.open(os.path.join(path, LOCK_FILE), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        yield False
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise LockedError(path) from None
            raise
        yield True
    finally:
        os.close(fd)


@contextmanager
def open_engine(path: str, *, create: bool = False, or_readonly: bool = False) -> Iterator[Engine]:
    """The store at ``path``, recovered as the application would open it; closed (fsynced) after.

    Unless ``create``, refuses a directory that is not already a store. No
    automatic compaction: a command changes only what it is asked to.
    ``or_readonly`` (the commands that only read) opens it read-only when
    another process owns it (``readonly=True``: nothing is written) instead
    of failing with LockedError.
    """
    from engine import Engine

    if create:
        require_new_or_store(path)
    else:
        require_store(path)
    from engine import LockedError

    try:
        db = Engine.open(path, sync="none", auto_compact=False)
    except LockedError:
        if not or_readonly:
            raise
        db = Engine.open(path, readonly=True)
    try:
        yield db
    finally:
        db.close()


@contextmanager
def open_store(
    path: str, database: str, table: str, *, create: bool = False, or_readonly: bool = False
) -> Iterator[LogStore]:
    """A ``store_api.LogStore`` on ``path``, disconnected (fsynced) after; see ``open_engine``."""
    from store_api import LogStore

    if create:
        require_new_or_store(path)
    else:
        require_store(path)
    from engine import LockedError

    try:
        store = LogStore(path, database=database, table=table, sync="none", auto_compact=False)
    except LockedError:
        if not or_readonly:
            raise
        store = LogStore(path, database=database, table=table, readonly=True)
    try:
        yield store
    finally:
        store.disconnect()


def store_namespace(args: argparse.Namespace) -> tuple[str, str] | None:
    """``(database, table)`` in store_api mode (``--database``/``--table`` given), else None."""
    if args.database is None and args.table is None:
        return None
    if args.base64:
        raise Refusal(USAGE, "--base64 is for raw engine keys; store_api keys are text")
    return args.database or DEFAULT_NAMESPACE, args.table or DEFAULT_NAMESPACE


def require_new_or_store(path: str) -> None:
    """Refuse unless ``path`` is a store, a missing directory or an empty one."""
    if os.path.isdir(path) and not os.listdir(path):
        return
    if not os.path.exists(path):
        return
    require_store(path)


@contextmanager
def progress_bar(
    total: int, what: str, disabled: bool, *, counting: str = ""
) -> Iterator[Advance | None]:
    """A progress bar on stderr over ``total`` bytes, or None for a small store or no terminal.

    With ``counting`` (a plural noun, e.g. "records") the bar counts items instead
    of bytes and shows up from ``PROGRESS_ITEMS`` of them.
    """
    threshold = PROGRESS_ITEMS if counting else PROGRESS_THRESHOLD
    if disabled or total < threshold or not sys.stderr.isatty():
        yield None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    amount: tuple[ProgressColumn, ...] = (
        (MofNCompleteColumn(), TextColumn(counting))
        if counting
        else (DownloadColumn(), TransferSpeedColumn())
    )
    columns = (TextColumn(what), BarColumn(), *amount, TimeRemainingColumn())
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        task = progress.add_task(what, total=total)
        yield lambda done: progress.update(task, completed=done)


# ------------------------------------------------------------ bytes and text


def render_bytes(data: bytes) -> str | dict[str, str]:
    """Bytes for JSON, reversibly: a string if valid UTF-8, else ``{"base64": "..."}``."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return {"base64": base64.b64encode(data).decode("ascii")}


def parse_bytes(text: str, *, is_base64: bool) -> bytes:
    """A command-line argument as bytes: UTF-8 text, or base64 if asked."""
    if not is_base64:
        return text.encode("utf-8", "surrogateescape")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise Refusal(USAGE, f"{text!r} is not valid base64 ({exc})") from None


def show_text(text: str) -> str:
    """Text for a human, on one line: control characters as ``\\xNN`` escapes."""
    return text.translate(_CONTROLS)


def show_bytes(data: bytes) -> str:
    """Bytes for a human, on one line: UTF-8 text, anything else as ``\\xNN`` escapes."""
    return show_text(data.decode("utf-8", "backslashreplace"))


_CONTROLS: Final = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def print_json(document: Any) -> None:
    """One JSON document on one line of stdout."""
    print(json.dumps(document, separators=(",", ":")))


def console(*, stderr: bool = False) -> Console:
    """A rich console; highlighting off so that output is what the data says."""
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def human_size(size: float) -> str:
    """``1536`` -> ``1.5 KiB``."""
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    step = 0
    while abs(size) >= 1024 and step < len(units) - 1:
        size /= 1024
        step += 1
    return f"{size:.0f} B" if step == 0 else f"{size:.1f} {units[step]}"
