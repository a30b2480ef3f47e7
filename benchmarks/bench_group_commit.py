"""Group commit: durable writes per second as writer threads are added.

Each thread writes its own new keys with ``sync="always"`` for ``--seconds``,
at 1, 4, 8 and 16 threads, alternating for ``--rounds`` rounds. Two layers are
measured side by side:

- ``engine``: ``Engine.put`` (encode, CRC, index, then wait for the fsync);
- ``writer``: the segment writer alone, ``append`` of a fixed 130-byte record
  then ``make_durable``: the same group commit with none of the engine's work,
  which is how far the group commit itself can go on this machine.

Prints medians, fsyncs per write and each thread count's rate as a multiple of
one thread's.

    .venv/bin/python benchmarks/bench_group_commit.py [--rounds 5] [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable

from engine import Engine
from engine.format import RecordType, encode_record
from engine.fs import OSFileSystem
from engine.options import DEFAULT_SEGMENT_SIZE
from engine.writer import SegmentWriter

THREADS = (1, 4, 8, 16)
VALUE = bytes(100)
#: The writer layer appends this one valid record over and over.
RECORD = encode_record(RecordType.PUT, 1, 0.0, b"t00:0000000000", VALUE)


def timed_threads(
    threads: int, seconds: float, write: Callable[[int, int], None]
) -> tuple[int, float]:
    """Run ``write(thread, i)`` in ``threads`` threads for about ``seconds``; writes, seconds."""
    counts = [0] * threads
    barrier = threading.Barrier(threads + 1)
    deadline = [0.0]

    def work(thread: int) -> None:
        barrier.wait()
        count = 0
        while count & 7 or time.perf_counter() < deadline[0]:
            write(thread, count)
            count += 1
        counts[thread] = count

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    gc.collect()
    start = time.perf_counter()
    deadline[0] = start + seconds
    barrier.wait()
    for worker in workers:
        worker.join()
    return sum(counts), time.perf_counter() - start


def engine_run(directory: str, threads: int, seconds: float) -> tuple[float, float]:
    """Writes per second and fsyncs per write of ``Engine.put`` with ``sync="always"``."""
    with Engine.open(directory, sync="always") as db:
        before = db.stats()["fsyncs"]

        def write(thread: int, i: int) -> None:
            db.put(b"t%02d:%010d" % (thread, i), VALUE)

        writes, elapsed = timed_threads(threads, seconds, write)
        return writes / elapsed, (db.stats()["fsyncs"] - before) / writes


def writer_run(directory: str, threads: int, seconds: float) -> tuple[float, float]:
    """Writes per second and fsyncs per write of the segment writer alone: append, then
    ``make_durable``."""
    writer = SegmentWriter(OSFileSystem(), directory, segment_size=DEFAULT_SEGMENT_SIZE)
    writer.start(1)
    before = writer.fsyncs
    size = len(RECORD)

    def write(thread: int, i: int) -> None:
        with writer.lock:
            pos = writer.append(RECORD) + size
        writer.make_durable(pos)

    try:
        writes, elapsed = timed_threads(threads, seconds, write)
        return writes / elapsed, (writer.fsyncs - before) / writes
    finally:
        writer.close()


LAYERS = {"engine": engine_run, "writer": writer_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=1.0)
    args = parser.parse_args()
    rates: dict[tuple[str, int], list[float]] = {}
    per_write: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.rounds):
        for threads in THREADS:
            for layer, run in LAYERS.items():
                directory = tempfile.mkdtemp(prefix="seglog-group-")
                try:
                    rate, fsyncs = run(directory, threads, args.seconds)
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
                rates.setdefault((layer, threads), []).append(rate)
                per_write.setdefault((layer, threads), []).append(fsyncs)
    print(f'sync="always" writes, median of {args.rounds} rounds of {args.seconds} s')
    print("layer   threads   writes/s  fsyncs/write  x one thread")
    for layer in LAYERS:
        one = statistics.median(rates[(layer, 1)])
        for threads in THREADS:
            rate = statistics.median(rates[(layer, threads)])
            fsyncs = statistics.median(per_write[(layer, threads)])
            print(f"{layer:<7} {threads:>7} {rate:>10,.0f} {fsyncs:>13.2f} {rate / one:>13.2f}")


if __name__ == "__main__":
    main()
