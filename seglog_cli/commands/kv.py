"""``seglog get/put/delete/list``: quick edits, in raw engine keys or in ``store_api`` terms.

Without ``--database``/``--table`` keys are raw engine keys (bytes: UTF-8 text,
or base64 with ``--base64``). With either option, keys are ``store_api`` keys of
that database and table (the other defaults to ``micro``), read and written
through ``store_api.LogStore``, so the key encoding is store_api's own.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from seglog_cli.commands._common import (
    NOT_FOUND,
    OK,
    USAGE,
    Refusal,
    add_common,
    open_engine,
    open_store,
    parse_bytes,
    print_json,
    render_bytes,
    show_bytes,
    show_text,
    store_namespace,
)
from store_api.options import DEFAULT_NAMESPACE


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    get = _parser(subparsers, "get", "print the value stored under KEY (exit 5 if missing)")
    get.add_argument("key", metavar="KEY")
    get.add_argument("--json", action="store_true", help="key, value, expiry (and metadata)")
    add_common(get, run_get)

    put = _parser(subparsers, "put", "store VALUE (or stdin) under KEY")
    put.add_argument("key", metavar="KEY")
    put.add_argument("value", metavar="VALUE", nargs="?", help="UTF-8 text (default: stdin)")
    put.add_argument("--ttl", type=float, help="expire after this many seconds")
    put.add_argument("--metadata", help="a JSON object (store_api mode only)")
    put.add_argument(
        "--create", action="store_true", help="create the store if DIR is missing or empty"
    )
    add_common(put, run_put)

    delete = _parser(subparsers, "delete", "remove KEY (removing a missing key is not an error)")
    delete.add_argument("key", metavar="KEY")
    add_common(delete, run_delete)

    listing = _parser(subparsers, "list", "print the keys, in order, one a line")
    listing.add_argument("--prefix", default="", help="only keys starting with this")
    listing.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")
    listing.add_argument("--json", action="store_true", help="JSON lines (reversible bytes)")
    add_common(listing, run_list)


def _parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str
) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(name, help=help_text, description=help_text + ".")
    parser.add_argument("directory", metavar="DIR", help="the store directory")
    space = parser.add_argument_group("store_api mode (either option selects it)")
    space.add_argument("--database", help=f"store_api database (default {DEFAULT_NAMESPACE})")
    space.add_argument("--table", help=f"store_api table (default {DEFAULT_NAMESPACE})")
    parser.add_argument(
        "--base64", action="store_true", help="KEY and --prefix are base64 (raw mode only)"
    )
    return parser


def _record_json(key: str, value: bytes, metadata: dict[str, Any], ttl: float) -> dict[str, Any]:
    return {"key": key, "value": render_bytes(value), "metadata": metadata, "ttl": ttl or None}


def run_get(args: argparse.Namespace) -> int:
    space = store_namespace(args)
    if space is None:
        key = parse_bytes(args.key, is_base64=args.base64)
        with open_engine(args.directory, or_readonly=True) as db:
            entry = db.get_entry(key)
        if entry is None:
            raise Refusal(NOT_FOUND, f"{show_bytes(key)!r}: not found")
        value, expires_at = entry
        document = {
            "key": render_bytes(key),
            "value": render_bytes(value),
            "expires_at": expires_at,
        }
    else:
        from store_api import NotFoundError

        with open_store(args.directory, *space, or_readonly=True) as store:
            try:
                record = store.read(args.key)[0]
            except NotFoundError as exc:
                raise Refusal(NOT_FOUND, str(exc)) from None
        value = record.value
        ttl = record.expiry.total_seconds()
        document = _record_json(record.key, value, record.metadata, ttl)
    if args.json:
        print_json(document)
    else:
        _write_value(value)
    return OK


def _write_value(value: bytes) -> None:
    """The value's exact bytes on stdout, and a newline only if stdout is a terminal."""
    sys.stdout.flush()
    sys.stdout.buffer.write(value)
    if sys.stdout.isatty():
        sys.stdout.buffer.write(b"\n")
    sys.stdout.buffer.flush()


def run_put(args: argparse.Namespace) -> int:
    space = store_namespace(args)
    value = (
        sys.stdin.buffer.read() if args.value is None else parse_bytes(args.value, is_base64=False)
    )
    if args.ttl is not None and not math.isfinite(args.ttl):
        raise Refusal(USAGE, f"--ttl must be a finite number of seconds, not {args.ttl}")
    if space is None:
        if args.metadata is not None:
            raise Refusal(USAGE, "--metadata needs store_api mode (--database/--table)")
        key = parse_bytes(args.key, is_base64=args.base64)
        with open_engine(args.directory, create=args.create) as db:
            db.put(key, value, ttl=args.ttl)
        return OK
    from store_api import Record

    metadata = _metadata(args.metadata)
    with open_store(args.directory, *space, create=args.create) as store:
        store.write(Record(args.key, value, metadata), ttl=args.ttl)
    return OK


def _metadata(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        metadata = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Refusal(USAGE, f"--metadata is not JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise Refusal(USAGE, "--metadata must be a JSON object")
    return metadata


def run_delete(args: argparse.Namespace) -> int:
    space = store_namespace(args)
    if space is None:
        key = parse_bytes(args.key, is_base64=args.base64)
        with open_engine(args.directory) as db:
            db.delete(key)
    else:
        with open_store(args.directory, *space) as store:
            store.delete(args.key)
    return OK


def run_list(args: argparse.Namespace) -> int:
    space = store_namespace(args)
    if args.limit < 0:
        raise Refusal(USAGE, "--limit must not be negative")
    if space is None:
        prefix = parse_bytes(args.prefix, is_base64=args.base64)
        with open_engine(args.directory, or_readonly=True) as db:
            keys = db.scan_keys(prefix=prefix)
            for count, key in enumerate(keys, 1):
                print(json.dumps(render_bytes(key)) if args.json else show_bytes(key))
                if count == args.limit:
                    break
        return OK
    with open_store(args.directory, *space, or_readonly=True) as store:
        names = store.list(prefix=args.prefix, limit=args.limit)
    for name in names:
        print(json.dumps(name) if args.json else show_text(name))
    return OK
