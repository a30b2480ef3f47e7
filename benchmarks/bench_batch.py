"""Atomic batches against single puts: records per second in the default sync mode.

The same random 16-byte keys and 100-byte values are written to a fresh store
once with one ``put`` per record and once in batches of ``--batch`` records
(``with db.batch() as b: b.put(...)``), alternating for ``--rounds`` rounds so
that the shared machine's drift hits both alike. Prints the medians and the
ratio batch / put.

    .venv/bin/python benchmarks/bench_batch.py [--keys 100000] [--batch 100] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import random
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from engine import Engine

VALUE_SIZE = 100


def single_puts(db: Engine, keys: list[bytes], values: list[bytes], _batch: int) -> None:
    put = db.put
    for key, value in zip(keys, values, strict=True):
        put(key, value)


def batched_puts(db: Engine, keys: list[bytes], values: list[bytes], batch: int) -> None:
    for start in range(0, len(keys), batch):
        with db.batch() as b:
            put = b.put
            chunk = zip(keys[start : start + batch], values[start : start + batch], strict=True)
            for key, value in chunk:
                put(key, value)


def records_per_second(
    write: Callable[[Engine, list[bytes], list[bytes], int], None],
    keys: list[bytes],
    values: list[bytes],
    batch: int,
) -> float:
    """Write every key into a fresh store with ``write``; the rate, close included."""
    directory = tempfile.mkdtemp(prefix="seglog-batch-")
    try:
        db = Engine.open(directory)
        gc.collect()
        start = time.perf_counter()
        write(db, keys, values, batch)
        db.close()
        seconds = time.perf_counter() - start
        with Engine.open(directory) as check:
            if len(check) != len(set(keys)):
                raise SystemExit(f"{write.__name__}: {len(check)} keys after reopen")
        return len(keys) / seconds
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rng = random.Random(1)
    keys = [rng.randbytes(16) for _ in range(args.keys)]
    pool = [rng.randbytes(VALUE_SIZE) for _ in range(1024)]
    values = [pool[i % len(pool)] for i in range(args.keys)]
    rates: dict[str, list[float]] = {"put": [], "batch": []}
    for _ in range(args.rounds):
        rates["put"].append(records_per_second(single_puts, keys, values, args.batch))
        rates["batch"].append(records_per_second(batched_puts, keys, values, args.batch))
    put, batch = (statistics.median(rates[name]) for name in ("put", "batch"))
    print(f"{args.keys:,} records, {VALUE_SIZE}-byte values, median of {args.rounds} rounds")
    print(f"one put per record:      {put:>10,.0f} records/s")
    print(f"batches of {args.batch:<4}          {batch:>10,.0f} records/s")
    print(f"batch / put: {batch / put:.2f}x")


if __name__ == "__main__":
    main()
