"""Subcommands of ``seglog``, one module each, found by :func:`seglog_cli.main.build_parser`.

To add a subcommand, add a module here that defines::

    def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        parser = subparsers.add_parser("name", help="one line", description="...")
        parser.add_argument(...)
        parser.set_defaults(func=run)

    def run(args: argparse.Namespace) -> int:   # the process exit code
        ...

Nothing else changes: ``main`` discovers the module. Keep heavy imports inside
``run`` so that ``seglog --help`` stays fast and one subcommand's optional
dependency never breaks another.
"""
