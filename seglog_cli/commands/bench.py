"""``seglog bench``: seglog side by side with the stores a Python user would pick.

See docs/BENCHMARKS.md for what is measured and how durability is matched.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from typing import Any

DESCRIPTION = """\
Run the same workloads on seglog and its peers, each store in its own process,
alternating, for several rounds, at matched durability. Prints a table of medians,
spreads and ratios to seglog, and writes results.json, results.md and chart.svg to
--out. The default run takes about 10 minutes on 2 cores; --quick under a minute.
"""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark seglog against sqlite3, dbm, LevelDB, LMDB, RocksDB, ...",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to run")
    what.add_argument("--stores", type=_csv, help="comma-separated stores (default: all installed)")
    what.add_argument(
        "--workloads",
        default="all",
        help="comma-separated workloads or groups: all, writes, reads, open, durable, "
        "fill-seq, fill-random, overwrite, read-random, prefix-scan, delete, reopen, "
        "disk-size, index-memory, durable-1t, durable-4t, durable-8t, durable-16t (default: all)",
    )
    what.add_argument(
        "--sync",
        default="periodic",
        help='sync modes for the main workloads: comma-separated "always", "periodic", '
        '"none", or "all" (default: periodic; durable-* always use "always")',
    )
    what.add_argument("--quick", action="store_true", help="a tiny run, under a minute")
    what.add_argument("--list", action="store_true", help="list stores and their durability")

    size = parser.add_argument_group("how much")
    size.add_argument("--size", type=int, help="keys per store (default 100000; quick 3000)")
    size.add_argument("--rounds", type=int, help="rounds per store (default 3; quick 2)")
    size.add_argument("--value-size", type=int, help="bytes per value (default 100)")
    size.add_argument(
        "--durable-ops", type=int, help="writes per durable-* run, at most (default 20000)"
    )
    size.add_argument(
        "--durable-seconds", type=float, help="time budget per durable-* run (default 1.0)"
    )
    size.add_argument(
        "--budget",
        type=float,
        dest="budget_seconds",
        help="time budget in seconds for fill-seq, overwrite and delete (default 5)",
    )
    size.add_argument("--seed", type=int, help="seed for keys order and values (default 1)")
    size.add_argument("--timeout", type=float, help="seconds per store process (default 1800)")

    out = parser.add_argument_group("output")
    out.add_argument("--out", default="bench-results", help="output directory")
    out.add_argument("--json", dest="json_path", help="JSON path (default OUT/results.json)")
    out.add_argument("--data-dir", help="where stores keep their files (default OUT/.data)")
    out.add_argument("--no-progress", action="store_true", help="no progress bar")
    out.add_argument(
        "--render",
        metavar="JSON",
        help="measure nothing: redraw the tables, results.md and chart.svg of an earlier "
        "run's results.json into --out",
    )
    parser.set_defaults(func=run)


def _modes(text: str) -> list[Any]:
    from benchmarks.adapters.base import SYNC_MODES

    if text.strip() == "all":
        return list(SYNC_MODES)
    modes = _csv(text)
    bad = [m for m in modes if m not in SYNC_MODES]
    if bad or not modes:
        raise ValueError(f"unknown sync mode(s) {bad}; use always, periodic, none or all")
    return [m for m in SYNC_MODES if m in modes]


def _console() -> Any | None:
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console()


def list_stores(names: list[str] | None) -> int:
    from benchmarks.adapters import store_names
    from benchmarks.runner import store_table

    table = store_table(names or store_names())
    for name, entry in table.items():
        state = entry["version"] if entry["available"] else entry["reason"]
        print(f"{name}: {state}")
        for mode, d in entry["durability"].items():
            text = "cannot offer it" if d is None else f"{d['level']}: {d['how']}"
            print(f"  {mode:9} {text}")
    return 0


def render(json_path: str, out: str) -> int:
    import json
    from pathlib import Path

    from benchmarks.runner import render_document

    try:
        document = json.loads(Path(json_path).read_text())
    except (OSError, ValueError) as exc:
        print(f"seglog bench: cannot read {json_path}: {exc}", file=sys.stderr)
        return 2
    written = render_document(document, Path(out), _console())
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def run(args: argparse.Namespace) -> int:
    from benchmarks.runner import QUICK, BenchConfig, run_bench
    from benchmarks.workloads import resolve_workloads

    if args.list:
        return list_stores(args.stores)
    if args.render:
        return render(args.render, args.out)
    try:
        workloads = resolve_workloads(args.workloads)
        modes = _modes(args.sync)
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
    config = BenchConfig(
        stores=args.stores,
        workloads=workloads,
        modes=modes,
        out=args.out,
        json_path=args.json_path,
        data_dir=args.data_dir,
        progress=not args.no_progress,
        command=" ".join(["seglog", *map(shlex.quote, getattr(args, "argv", []))]),
    )
    if args.quick:
        for name, value in QUICK.items():
            setattr(config, name, value)
    for name in (
        "size",
        "rounds",
        "value_size",
        "durable_ops",
        "durable_seconds",
        "budget_seconds",
        "seed",
        "timeout",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if config.size < 1 or config.rounds < 1:
        print("seglog bench: --size and --rounds must be at least 1", file=sys.stderr)
        return 2
    # Turn SIGTERM into SystemExit so the runner's cleanup kills the worker process
    # it is waiting for instead of leaving it running on its own.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        _document, code = run_bench(config, _console())
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code
