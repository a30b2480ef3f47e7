"""Engine core throughput against a bare loop and the peers to beat, measured in one run.

100k random 16-byte keys, 100-byte values, one call per operation, the default
sync mode. Stores alternate within each round and the median of the rounds is
reported with each store's ratio to seglog, since absolute figures from a shared
machine drift. Also reports the index's memory per key at 1M keys (tracemalloc).

    .venv/bin/python benchmarks/bench_engine.py [--keys 100000] [--rounds 5] [--memory-keys 1000000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable

from engine import Engine

VALUE = b"v" * 100
Workload = Callable[[str, list[bytes], list[bytes]], tuple[float, float]]


def run_seglog(path: str, keys: list[bytes], reads: list[bytes]) -> tuple[float, float]:
    with Engine.open(path) as db:
        put, get = db.put, db.get
        start = time.perf_counter()
        for key in keys:
            put(key, VALUE)
        puts = time.perf_counter() - start
        start = time.perf_counter()
        for key in reads:
            get(key)
        return puts, time.perf_counter() - start


def run_bare_loop(path: str, keys: list[bytes], reads: list[bytes]) -> tuple[float, float]:
    """The floor for a Python store: one os.write per record and a dict insert."""
    fd = os.open(os.path.join(path, "log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    index: dict[bytes, int] = {}
    write = os.write
    start = time.perf_counter()
    for offset, key in enumerate(keys):
        write(fd, key + VALUE)
        index[key] = offset
    puts = time.perf_counter() - start
    os.close(fd)
    return puts, float("nan")


def run_plyvel(path: str, keys: list[bytes], reads: list[bytes]) -> tuple[float, float]:
    import plyvel

    db = plyvel.DB(path, create_if_missing=True)
    put, get = db.put, db.get
    start = time.perf_counter()
    for key in keys:
        put(key, VALUE)
    puts = time.perf_counter() - start
    start = time.perf_counter()
    for key in reads:
        get(key)
    gets = time.perf_counter() - start
    db.close()
    return puts, gets


def run_semidbm(path: str, keys: list[bytes], reads: list[bytes]) -> tuple[float, float]:
    import semidbm

    db = semidbm.open(os.path.join(path, "db"), "c")
    start = time.perf_counter()
    for key in keys:
        db[key] = VALUE
    puts = time.perf_counter() - start
    start = time.perf_counter()
    for key in reads:
        db[key]
    gets = time.perf_counter() - start
    db.close()
    return puts, gets


def available() -> dict[str, Workload]:
    stores: dict[str, Workload] = {"seglog": run_seglog, "bare loop": run_bare_loop}
    for name, runner in (("plyvel", run_plyvel), ("semidbm", run_semidbm)):
        try:
            __import__(name)
        except ImportError:
            print(f"({name} not installed: skipped)")
            continue
        stores[name] = runner
    return stores


def index_bytes_per_key(count: int) -> float:
    """tracemalloc's count of what the engine holds per key after ``count`` puts.

    Keys are made inside the traced region and not kept by the caller, so the
    key objects count as the index's, as they would in an application.
    """
    rng = random.Random(2)
    directory = tempfile.mkdtemp(prefix="seglog-mem-")
    try:
        with Engine.open(directory) as db:
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(count):
                db.put(rng.randbytes(16), VALUE)
            list(db.scan_keys(prefix=b"\x00\x00"))  # settle the sorted view too
            held = tracemalloc.get_traced_memory()[0] - before
            tracemalloc.stop()
    finally:
        shutil.rmtree(directory)
    return held / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--memory-keys", type=int, default=1_000_000)
    args = parser.parse_args()
    rng = random.Random(1)
    keys = [rng.randbytes(16) for _ in range(args.keys)]
    reads = keys[:]
    rng.shuffle(reads)
    stores = available()
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
    for _ in range(args.rounds):
        for name, runner in stores.items():
            directory = tempfile.mkdtemp(prefix="seglog-bench-")
            try:
                results[name].append(runner(directory, keys, reads))
            finally:
                shutil.rmtree(directory)
    rates = {
        name: (
            args.keys / statistics.median(p for p, _ in runs),
            args.keys / statistics.median(g for _, g in runs),
        )
        for name, runs in results.items()
    }
    base_put, base_get = rates["seglog"]
    print(f"{args.keys:,} keys, 100-byte values, median of {args.rounds} alternating rounds")
    print(f"{'store':<10} {'puts/s':>12} {'vs seglog':>10} {'gets/s':>12} {'vs seglog':>10}")
    for name, (put_rate, get_rate) in rates.items():
        gets = "-" if get_rate != get_rate else f"{get_rate:12,.0f}"
        get_ratio = "-" if get_rate != get_rate else f"{get_rate / base_get:10.2f}"
        print(
            f"{name:<10} {put_rate:12,.0f} {put_rate / base_put:10.2f} {gets:>12} {get_ratio:>10}"
        )
    if args.memory_keys:
        per_key = index_bytes_per_key(args.memory_keys)
        print(f"index memory: {per_key:.0f} bytes per key at {args.memory_keys:,} keys")


if __name__ == "__main__":
    main()
