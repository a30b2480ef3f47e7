"""``seglog dump DIR``: every live key and value as JSON lines, in key order.

Bytes are rendered reversibly: a JSON string when they are valid UTF-8, else
``{"base64": "..."}``. Raw mode writes ``{"key", "value", "expires_at"}``
(absolute Unix time or null); store_api mode (``--database``/``--table``)
writes ``{"key", "value", "metadata", "ttl"}`` (seconds left or null).
"""

from __future__ import annotations

import argparse
import json
import sys

from seglog_cli.commands._common import (
    OK,
    add_common,
    open_engine,
    open_store,
    parse_bytes,
    render_bytes,
    store_namespace,
)
from store_api.options import DEFAULT_NAMESPACE

DESCRIPTION = """\
Write every live key and value as one JSON object a line, in key order. Bytes
that are valid UTF-8 appear as JSON strings, anything else as {"base64": "..."}.
Raw engine keys by default: {"key", "value", "expires_at"}. With --database or
--table, the records of that store_api table: {"key", "value", "metadata", "ttl"}.
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "dump",
        help="every live key and value as JSON lines",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", metavar="DIR", help="the store directory")
    parser.add_argument("--prefix", default="", help="only keys starting with this")
    parser.add_argument("--base64", action="store_true", help="--prefix is base64 (raw mode)")
    parser.add_argument("--database", help=f"store_api database (default {DEFAULT_NAMESPACE})")
    parser.add_argument("--table", help=f"store_api table (default {DEFAULT_NAMESPACE})")
    add_common(parser, run)


def run(args: argparse.Namespace) -> int:
    write = sys.stdout.write
    space = store_namespace(args)
    if space is None:
        prefix = parse_bytes(args.prefix, is_base64=args.base64)
        with open_engine(args.directory, or_readonly=True) as db:
            for key in db.scan_keys(prefix=prefix):
                entry = db.get_entry(key)
                if entry is not None:
                    value, expires_at = entry
                    line = {"key": render_bytes(key), "value": render_bytes(value)}
                    write(json.dumps({**line, "expires_at": expires_at}) + "\n")
        return OK
    with open_store(args.directory, *space, or_readonly=True) as store:
        for record in store.read(args.prefix, prefix=True):
            ttl = record.expiry.total_seconds() or None
            line = {"key": record.key, "value": render_bytes(record.value)}
            write(json.dumps({**line, "metadata": record.metadata, "ttl": ttl}) + "\n")
    return OK
