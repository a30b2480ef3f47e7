"""``seglog bench``: seglog side by side with the stores a Python user would pick.

See docs/BENCHMARKS.md for what is measured and how durability is matched.
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
from typing import Any

DESCRIPTION = """\
Run the same workloads on seglog and its peers, each store in its own process,
alternating, for several rounds, at matched durability. Prints a table of medians,
spreads and ratios to seglog, and writes results.json, results.md, chart.svg (and
latency.svg for YCSB workloads) to --out. The default run (the classic workloads)
takes about 13 minutes on 2 cores; --quick under a minute; --workloads ycsb runs
YCSB's core workloads A-F with latency percentiles.

  seglog bench compare OLD.json NEW.json [--threshold 0.1]

compares two runs' results.json: each workload's ratio with a bootstrap confidence
interval over rounds; exits 1 if one regressed by more than the threshold.
"""


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in _csv(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of integers: {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"needs positive integers: {text!r}")
    return values


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="benchmark seglog against sqlite3, dbm, LevelDB, LMDB, RocksDB, ...",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_argument_group("what to run")
    parser.add_argument(
        "action",
        nargs="*",
        metavar="compare OLD.json NEW.json",
        help="compare two results.json files instead of measuring",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="compare: the regression that fails it, as a fraction (default 0.10)",
    )
    what.add_argument("--stores", type=_csv, help="comma-separated stores (default: all installed)")
    what.add_argument(
        "--adapter",
        action="append",
        default=[],
        metavar="MODULE:CLASS",
        help="also run your own store through this Adapter subclass (repeatable); "
        "without --stores, seglog and the adapters run",
    )
    what.add_argument(
        "--workloads",
        default="classic",
        help="comma-separated workloads or groups: classic (the default: every "
        "single-operation workload), ycsb (ycsb-a .. ycsb-f), all, writes, reads, open, "
        "durable, fill-seq, fill-random, overwrite, read-random, prefix-scan, delete, "
        "reopen, disk-size, index-memory, durable-1t, durable-4t, durable-8t, durable-16t",
    )
    what.add_argument(
        "--sync",
        default="periodic",
        help='sync modes for the main workloads: comma-separated "always", "periodic", '
        '"none", or "all" (default: periodic; durable-* always use "always")',
    )
    what.add_argument(
        "--postgres",
        metavar="DSN",
        help="run postgres-store on this server (a schema per store directory) instead of "
        "a throwaway one; the same as setting $SEGLOG_BENCH_POSTGRES",
    )
    what.add_argument("--quick", action="store_true", help="a tiny run, under a minute")
    what.add_argument("--list", action="store_true", help="list stores and their durability")

    size = parser.add_argument_group("how much")
    size.add_argument("--size", type=int, help="keys per store (default 100000; quick 3000)")
    size.add_argument("--rounds", type=int, help="rounds per store (default 3; quick 2)")
    size.add_argument(
        "--value-size",
        type=_ints,
        help="bytes per value (default 100); several (16,1024,65536) sweep them",
    )
    ycsb = parser.add_argument_group("YCSB workloads")
    ycsb.add_argument("--records", type=int, help="records loaded (default 10000; quick 1000)")
    ycsb.add_argument(
        "--operations", type=int, help="operations per workload (default 20000; quick 2000)"
    )
    ycsb.add_argument(
        "--threads", type=_ints, help="client threads (default 1); several (1,4,16) sweep them"
    )
    ycsb.add_argument(
        "--target-rate",
        type=float,
        help="operations per second, all threads together; latency is then measured "
        "from each operation's intended start (default: as fast as possible)",
    )
    ycsb.add_argument(
        "--distribution",
        choices=["uniform", "zipfian", "latest"],
        help="request distribution for every mix (default: each mix's own, as in YCSB)",
    )
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


def _console() -> Any:
    from rich.console import Console

    return Console()


def list_stores(names: list[str] | None) -> int:
    from benchmarks.adapters import store_names
    from benchmarks.runner import resolve_stores, store_table

    try:
        table = store_table(resolve_stores(names or store_names()))
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
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

    from benchmarks.render import render_document

    try:
        document = json.loads(Path(json_path).read_text())
    except (OSError, ValueError) as exc:
        print(f"seglog bench: cannot read {json_path}: {exc}", file=sys.stderr)
        return 2
    written = render_document(document, Path(out), _console())
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


def compare(files: list[str], threshold: float) -> int:
    from benchmarks.compare_runs import compare_files

    if len(files) != 2:
        print("seglog bench: compare needs OLD.json and NEW.json", file=sys.stderr)
        return 2
    try:
        lines, regressed = compare_files(files[0], files[1], threshold)
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 1 if regressed else 0


def _config(args: argparse.Namespace) -> Any:
    """The BenchConfig the arguments ask for; ValueError for a bad combination."""
    from benchmarks.adapters import BASELINE
    from benchmarks.runner import QUICK, BenchConfig
    from benchmarks.workloads import resolve_workloads

    stores = args.stores
    if args.adapter:
        stores = [*(stores or [BASELINE]), *args.adapter]
    config = BenchConfig(
        stores=stores,
        workloads=resolve_workloads(args.workloads),
        modes=_modes(args.sync),
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
        "durable_ops",
        "durable_seconds",
        "budget_seconds",
        "seed",
        "timeout",
        "records",
        "operations",
        "target_rate",
        "distribution",
    ):
        value = getattr(args, name)
        if value is not None:
            setattr(config, name, value)
    if args.value_size:
        config.value_size = args.value_size[0]
    if args.threads:
        config.threads = args.threads[0]
    if min(config.size, config.rounds, config.records, config.operations) < 1:
        raise ValueError("--size, --rounds, --records and --operations must be at least 1")
    if config.target_rate is not None and config.target_rate <= 0:
        raise ValueError("--target-rate must be positive")
    return config


def run(args: argparse.Namespace) -> int:
    from benchmarks.adapters.postgres_store import DSN_VARIABLE
    from benchmarks.runner import run_bench
    from benchmarks.sweep import run_sweep

    if args.action:
        if args.action[0] != "compare":
            print(f"seglog bench: unknown action {args.action[0]!r}", file=sys.stderr)
            return 2
        return compare(args.action[1:], args.threshold)
    if args.list:
        return list_stores(args.stores)
    if args.render:
        return render(args.render, args.out)
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
    if args.postgres:
        # The worker processes inherit the environment, and the adapter reads it there.
        os.environ[DSN_VARIABLE] = args.postgres
    value_sizes = args.value_size or [config.value_size]
    threads = args.threads or [config.threads]
    # Turn SIGTERM into SystemExit so the runner's cleanup kills the worker process
    # it is waiting for instead of leaving it running on its own.
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if len(value_sizes) > 1 or len(threads) > 1:
            code = run_sweep(config, value_sizes, threads, _console())
        else:
            _document, code = run_bench(config, _console())
    except ValueError as exc:
        print(f"seglog bench: {exc}", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)
    return code
