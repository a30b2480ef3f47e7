"""Writer processes sharing one store (``shared=True``) against one process alone.

For each sync mode, the same number of 100-byte puts of distinct 16-byte keys:

- ``alone``: one process with the store to itself (``Engine.open(path)``);
- ``shared x1``: one process with ``shared=True`` (the cost of the protocol:
  the append lock, a catch-up and a ``pwrite`` per write);
- ``shared x4``: four processes with ``shared=True``, started together, each
  writing a quarter; the rate is all puts over the wall time of the slowest.

    .venv/bin/python benchmarks/bench_shared_writers.py [--puts 40000] [--durable-puts 2000]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import tempfile
import time
from typing import Any

from engine import Engine

VALUE = bytes(100)
_fork = multiprocessing.get_context("fork")


def _write(path: str, first: int, count: int, options: dict[str, Any], start: Any) -> None:
    db = Engine.open(path, auto_compact=False, **options)
    start.wait()
    for n in range(first, first + count):
        db.put(b"key%013d" % n, VALUE)
    db.close()


def rate(processes: int, puts: int, options: dict[str, Any]) -> float:
    """Puts per second of ``processes`` writers sharing ``puts`` between them."""
    path = tempfile.mkdtemp(prefix="seglog-shared-bench-")
    try:
        start = _fork.Event()
        share = puts // processes
        workers = [
            _fork.Process(target=_write, args=(path, i * share, share, options, start))
            for i in range(processes)
        ]
        for worker in workers:
            worker.start()
        time.sleep(0.5)  # every process has opened the store
        began = time.perf_counter()
        start.set()
        for worker in workers:
            worker.join()
            if worker.exitcode:
                raise RuntimeError(f"a writer failed with exit code {worker.exitcode}")
        return share * processes / (time.perf_counter() - began)
    finally:
        shutil.rmtree(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--puts", type=int, default=40_000)
    parser.add_argument("--durable-puts", type=int, default=2_000)
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}")
    print(f"{'sync':9} {'alone':>10} {'shared x1':>10} {'shared x4':>10} {'x4 / alone':>10}")
    for sync, puts in (("periodic", args.puts), ("always", args.durable_puts)):
        alone = rate(1, puts, {"sync": sync})
        one = rate(1, puts, {"sync": sync, "shared": True})
        four = rate(4, puts, {"sync": sync, "shared": True})
        print(f"{sync:9} {alone:10,.0f} {one:10,.0f} {four:10,.0f} {four / alone:9.2f}x")


if __name__ == "__main__":
    main()
