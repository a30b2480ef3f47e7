"""``AsyncLogStore``: event-loop lag under durable writers, and async against sync throughput.

Lag: a probe task sleeps 1 ms over and over and records how late it wakes;
its p50/p99/max is the loop's responsiveness. It runs while 8 tasks write for
``--seconds`` with ``sync="always"`` through

- ``AsyncLogStore`` (writes in its threads, fsyncs shared by group commit);
- ``LogStore`` called straight from the coroutines, the peer: what asyncio code
  gets from a blocking store (each write holds the loop through its fsync);
- nothing: the probe alone, the machine's own jitter.

Throughput, each pair measured back to back and alternated over ``--rounds``:

- durable writes: 8 tasks on ``AsyncLogStore`` against 8 threads on ``LogStore``;
- ``sync="periodic"`` writes and exact reads: one task against one thread.

Prints medians and ratios (async / sync).

    .venv/bin/python benchmarks/bench_aio.py [--rounds 3] [--seconds 2.0]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from engine import SyncMode
from store_api import LogStore, Record
from store_api.aio import AsyncLogStore

WRITERS = 8
VALUE = bytes(100)
PROBE_INTERVAL = 0.001


@contextmanager
def scratch() -> Iterator[str]:
    directory = tempfile.mkdtemp(prefix="seglog-aio-")
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def probe(lags: list[float], stop: asyncio.Event) -> None:
    """Record how late each 1 ms sleep wakes, until ``stop``."""
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(PROBE_INTERVAL)
        lags.append(time.perf_counter() - start - PROBE_INTERVAL)


async def lag_run(
    seconds: float, write: Callable[[int, int], Awaitable[None]] | None
) -> tuple[list[float], int]:
    """Probe lags while ``WRITERS`` tasks call ``write(task, i)`` for ``seconds``; lags, writes."""
    lags: list[float] = []
    stop = asyncio.Event()
    counts = [0] * WRITERS

    async def writer(task: int) -> None:
        assert write is not None
        while not stop.is_set():
            await write(task, counts[task])
            counts[task] += 1

    probing = asyncio.create_task(probe(lags, stop))
    tasks = [asyncio.create_task(writer(t)) for t in range(WRITERS)] if write else []
    await asyncio.sleep(seconds)
    stop.set()
    await asyncio.gather(probing, *tasks)
    return lags, sum(counts)


async def lag_async(directory: str, seconds: float) -> tuple[list[float], int]:
    async with AsyncLogStore(directory, sync="always") as store:

        async def write(task: int, i: int) -> None:
            await store.write(Record(f"t{task}-{i}", VALUE))

        return await lag_run(seconds, write)


async def lag_blocking(directory: str, seconds: float) -> tuple[list[float], int]:
    with LogStore(directory, sync="always") as store:

        async def write(task: int, i: int) -> None:
            store.write(Record(f"t{task}-{i}", VALUE))
            await asyncio.sleep(0)  # let the other tasks, and the probe, have a turn

        return await lag_run(seconds, write)


async def lag_idle(directory: str, seconds: float) -> tuple[list[float], int]:
    return await lag_run(seconds, None)


LAG_RUNS = {
    "AsyncLogStore": lag_async,
    "LogStore on the loop": lag_blocking,
    "probe alone": lag_idle,
}


def threads_rate(threads: int, seconds: float, call: Callable[[int, int], object]) -> float:
    """Calls per second of ``call(thread, i)`` in ``threads`` threads for ``seconds``."""
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def work(thread: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            call(thread, i)
            i += 1
        counts[thread] = i

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.perf_counter() - start)


async def tasks_rate(
    tasks: int, seconds: float, call: Callable[[int, int], Awaitable[object]]
) -> float:
    """Calls per second of ``await call(task, i)`` in ``tasks`` tasks for ``seconds``."""
    counts = [0] * tasks
    deadline = time.perf_counter() + seconds

    async def work(task: int) -> None:
        i = 0
        while time.perf_counter() < deadline:
            await call(task, i)
            i += 1
        counts[task] = i

    start = time.perf_counter()
    await asyncio.gather(*(work(t) for t in range(tasks)))
    return sum(counts) / (time.perf_counter() - start)


def write_rates(sync: SyncMode, workers: int, seconds: float) -> tuple[float, float]:
    """Writes per second: (``AsyncLogStore`` with ``workers`` tasks, ``LogStore`` with threads)."""

    async def run_async(directory: str) -> float:
        async with AsyncLogStore(directory, sync=sync) as store:
            return await tasks_rate(
                workers, seconds, lambda t, i: store.write(Record(f"t{t}-{i}", VALUE))
            )

    with scratch() as directory:
        async_rate = asyncio.run(run_async(directory))
    with scratch() as directory, LogStore(directory, sync=sync) as store:
        sync_rate = threads_rate(
            workers, seconds, lambda t, i: store.write(Record(f"t{t}-{i}", VALUE))
        )
    return async_rate, sync_rate


def read_rates(seconds: float, keys: int = 10_000) -> tuple[float, float]:
    """Exact reads per second of one task on ``AsyncLogStore`` and one thread on ``LogStore``."""
    with scratch() as directory:
        with LogStore(directory, sync="none") as store:
            for i in range(keys):
                store.write(Record(f"k{i}", VALUE))
            sync_rate = threads_rate(1, seconds, lambda t, i: store.read(f"k{i % keys}"))

        async def run_async() -> float:
            async with AsyncLogStore(directory) as store:
                return await tasks_rate(1, seconds, lambda t, i: store.read(f"k{i % keys}"))

        return asyncio.run(run_async()), sync_rate


def durable_writes(seconds: float) -> tuple[float, float]:
    return write_rates("always", WRITERS, seconds)


def periodic_writes(seconds: float) -> tuple[float, float]:
    return write_rates("periodic", 1, seconds)


THROUGHPUT: dict[str, Callable[[float], tuple[float, float]]] = {
    f"durable writes, {WRITERS} tasks / {WRITERS} threads": durable_writes,
    "periodic writes, 1 task / 1 thread": periodic_writes,
    "exact reads, 1 task / 1 thread": read_rates,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    lags: dict[str, list[float]] = {name: [] for name in LAG_RUNS}
    writes: dict[str, int] = dict.fromkeys(LAG_RUNS, 0)
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in THROUGHPUT}
    for _ in range(args.rounds):
        for name, run in LAG_RUNS.items():
            with scratch() as directory:
                found, count = asyncio.run(run(directory, args.seconds))
            lags[name] += found
            writes[name] += count
        for name, measure in THROUGHPUT.items():
            rates[name].append(measure(args.seconds))

    total = args.rounds * args.seconds
    print(f"Event-loop lag of a 1 ms probe while {WRITERS} tasks write with sync='always'")
    print(f"({args.rounds} rounds of {args.seconds} s):")
    print(f"{'writer':<22} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'writes/s':>10}")
    for name, found in lags.items():
        ms = [lag * 1000 for lag in found]
        print(
            f"{name:<22} {percentile(ms, 0.5):>8.2f} {percentile(ms, 0.99):>8.2f} "
            f"{max(ms):>8.2f} {writes[name] / total:>10,.0f}"
        )
    print(f"\nThroughput, median of {args.rounds} rounds (async / sync):")
    print(f"{'workload':<34} {'async/s':>10} {'sync/s':>10} {'ratio':>7}")
    for name, pairs in rates.items():
        async_rate = statistics.median(pair[0] for pair in pairs)
        sync_rate = statistics.median(pair[1] for pair in pairs)
        print(f"{name:<34} {async_rate:>10,.0f} {sync_rate:>10,.0f} {async_rate / sync_rate:>7.2f}")


if __name__ == "__main__":
    main()
