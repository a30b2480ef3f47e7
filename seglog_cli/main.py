"""``seglog``: an argparse dispatcher over the modules in :mod:`seglog_cli.commands`.

Each module there exposes ``register(subparsers)``, which adds its subparser and
sets ``func`` (called with the parsed arguments, returning the exit code), so
adding a subcommand is adding one module.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from seglog_cli import commands


def command_modules() -> list[str]:
    """Names of the subcommand modules, in alphabetical order."""
    return sorted(
        f"{commands.__name__}.{m.name}"
        for m in pkgutil.iter_modules(commands.__path__)
        if not m.name.startswith("_")
    )


def _version() -> str:
    try:
        return version("seglog")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seglog",
        description="seglog: an embedded, durable, log-structured key-value store.",
    )
    parser.add_argument("--version", action="version", version=f"seglog {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in command_modules():
        module = importlib.import_module(name)
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(arguments)
    args.argv = arguments
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
