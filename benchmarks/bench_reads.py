"""Random gets and prefix scans side by side with the C peers, timed in CPU seconds.

The bench's ``read-random`` and ``prefix-scan`` steps (``benchmarks.worker``):
``--keys`` keys of ``benchmarks.workloads`` filled in random order with
100-byte values through the bench adapters, then every key read once in a new
random order, then ``keys / 200`` scans of random 100-key prefixes (the first
scan pays for sorting the index). Each store runs in its own process, the
stores alternate for ``--rounds`` rounds, and each step is timed with
``time.process_time`` as well as the wall clock: on a shared machine the CPU
time of one process moves far less with the load than the wall clock does.
``--base DIR`` adds seglog run from another checkout (``git worktree add DIR
COMMIT``), for old-against-new in the same run. Prints medians and ratios.

    .venv/bin/python benchmarks/bench_reads.py [--keys 100000] [--rounds 7] [--base DIR]
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.adapters.base import Adapter
from benchmarks.workloads import SCAN_WIDTH, make_key, scan_prefix, value_pool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
METRICS = ("get_cpu", "get_wall", "scan_cpu", "scan_wall")


def adapter_class(store: str) -> type[Adapter]:
    if store == "seglog":
        from benchmarks.adapters.seglog_engine import EngineAdapter

        return EngineAdapter
    if store == "plyvel":
        from benchmarks.adapters.peer_plyvel import PlyvelAdapter

        return PlyvelAdapter
    from benchmarks.adapters.peer_lmdb import LmdbAdapter

    return LmdbAdapter


def measure(store: str, n: int) -> dict[str, float]:
    """One store's gets and scans per second, CPU and wall, in this process."""
    directory = tempfile.mkdtemp(prefix="bench-reads-")
    db = adapter_class(store)(os.path.join(directory, "db"), "periodic")
    db.open()
    rng = random.Random(42)
    pool = value_pool(100, 1)
    keys = [db.key(make_key(i)) for i in range(n)]
    order = list(range(n))
    rng.shuffle(order)
    put = db.put
    for i in order:
        put(keys[i], pool[i % len(pool)])
    rng.shuffle(order)
    read_keys = [keys[i] for i in order]
    get = db.get
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    for key in read_keys:
        get(key)
    get_cpu, get_wall = time.process_time() - cpu, time.perf_counter() - wall
    groups = max(1, n // SCAN_WIDTH)
    prefixes = [scan_prefix(rng.randrange(groups)) for _ in range(max(1, n // (2 * SCAN_WIDTH)))]
    scan = db.scan_prefix
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    seen = 0
    for prefix in prefixes:
        seen += scan(prefix)
    scan_cpu, scan_wall = time.process_time() - cpu, time.perf_counter() - wall
    if seen != len(prefixes) * SCAN_WIDTH:
        raise SystemExit(f"{store}: scanned {seen} keys, expected {len(prefixes) * SCAN_WIDTH}")
    db.close()
    shutil.rmtree(directory, ignore_errors=True)
    return {
        "get_cpu": n / get_cpu,
        "get_wall": n / get_wall,
        "scan_cpu": seen / scan_cpu,
        "scan_wall": seen / scan_wall,
    }


def run_child(store: str, code: str, n: int) -> dict[str, float]:
    """``measure`` in a fresh process whose ``engine`` comes from checkout ``code``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join((code, ROOT)))
    script = os.path.abspath(__file__)
    command = [sys.executable, script, "--child", store, "--keys", str(n)]
    out = subprocess.run(command, env=env, cwd=code, check=True, capture_output=True, text=True)
    fields = out.stdout.split()
    return {name: float(value) for name, value in zip(fields[::2], fields[1::2], strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--base", help="another checkout whose seglog runs as seglog-base")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(" ".join(f"{k} {v:.0f}" for k, v in measure(args.child, args.keys).items()))
        return
    sides = [("seglog", "seglog", ROOT), ("plyvel", "plyvel", ROOT), ("lmdb", "lmdb", ROOT)]
    if args.base:
        sides.insert(0, ("seglog-base", "seglog", os.path.abspath(args.base)))
    results: dict[str, dict[str, list[float]]] = {label: {} for label, _, _ in sides}
    print(f"start: load {os.getloadavg()[0]:.2f}")
    for _ in range(args.rounds):
        for label, store, code in sides:
            for name, value in run_child(store, code, args.keys).items():
                results[label].setdefault(name, []).append(value)
    print(f"end: load {os.getloadavg()[0]:.2f}; medians of {args.rounds} rounds, per second")
    for metric in METRICS:
        median = {label: statistics.median(results[label][metric]) for label in results}
        cells = "  ".join(f"{label} {value / 1e3:,.0f}k" for label, value in median.items())
        ratios = "  ".join(
            f"seglog/{peer} {median['seglog'] / median[peer]:.2f}x"
            for peer in median
            if peer != "seglog"
        )
        print(f"{metric:9}  {cells}  |  {ratios}")


if __name__ == "__main__":
    main()
