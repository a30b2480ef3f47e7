"""Run one YCSB mix on one loaded store: threads, pacing, latencies.

Each thread draws its own operations and keys (own random generator, shared
insert counter) and times every call with ``perf_counter_ns``; the values go to
a plain array during the run and into HdrHistograms after it, so the timed loop
pays one append per operation.

With a target rate each thread runs on a schedule: operation *i* is due at
``start + i * threads / rate``. Its latency is measured from when it was due, not
from when the thread got round to it, so a stall that delays the operations
behind it shows up in their latencies too (the "coordinated omission" a closed
loop hides). Without a target rate, threads run flat out and latency is each
call's own time.
"""

from __future__ import annotations

import random
import threading
import time
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from benchmarks.adapters.base import Adapter
from benchmarks.generators import AcknowledgedCounter
from benchmarks.latency import encode, record_all
from benchmarks.together import run_together
from benchmarks.ycsb import Distribution, Mix, Op, OpChooser, key_chooser

#: Operations between a thread's looks at the clock (time budget, harness sync).
CHECK_EVERY = 64


@dataclass
class MixSettings:
    records: int
    operations: int
    threads: int = 1
    target_rate: float | None = None
    distribution: Distribution | None = None
    """None: the mix's own distribution."""
    seed: int = 0
    budget_seconds: float | None = None
    sync_interval: float = 1.0


@dataclass
class MixResult:
    done: int
    seconds: float
    counts: dict[str, int]
    histograms: dict[str, str]
    """Encoded HdrHistogram of each operation type's latencies (ns)."""
    missing_reads: int = 0
    partial: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Calls:
    """The store's callables, serialized by one lock when the store needs it."""

    get: Callable[[Any], bytes | None]
    put: Callable[[Any, bytes], object]
    scan: Callable[[Any, int], int]
    sync: Callable[[], None]


def _calls(db: Adapter, threads: int) -> _Calls:
    if threads == 1 or db.threadsafe:
        return _Calls(db.get, db.put, db.scan, db.sync)
    lock = threading.Lock()
    get, put, scan, sync = db.get, db.put, db.scan, db.sync

    def locked_get(key: Any) -> bytes | None:
        with lock:
            return get(key)

    def locked_put(key: Any, value: bytes) -> object:
        with lock:
            return put(key, value)

    def locked_scan(key: Any, count: int) -> int:
        with lock:
            return scan(key, count)

    def locked_sync() -> None:
        with lock:
            sync()

    return _Calls(locked_get, locked_put, locked_scan, locked_sync)


def run_mix(
    db: Adapter,
    mix: Mix,
    settings: MixSettings,
    keys: Sequence[Any],
    pool: Sequence[bytes],
) -> MixResult:
    """Run ``settings.operations`` operations of ``mix`` on ``db``, which holds
    records ``0 .. settings.records - 1``; ``keys[n]`` is the key of record n, for
    every n an insert may reach (records + operations)."""
    threads = max(1, settings.threads)
    distribution = settings.distribution or mix.distribution
    inserts = int(settings.operations * mix.proportions.get("insert", 0.0))
    counter = AcknowledgedCounter(settings.records)
    calls = _calls(db, threads)
    harness_sync = db.sync_mode == "periodic" and not db.self_syncing
    quotas = [settings.operations // threads] * threads
    for t in range(settings.operations % threads):
        quotas[t] += 1
    interval_ns = int(threads * 1e9 / settings.target_rate) if settings.target_rate else 0
    latencies: list[dict[Op, array[int]]] = [{op: array("q") for op in mix.ops()} for _ in quotas]
    missing = [0] * threads
    budget = settings.budget_seconds
    deadline_ns = int(budget * 1e9) if budget is not None else 2**62
    # Each thread's generators are made before the clock starts (a zipfian sums
    # zeta over every record when it is made).
    rngs = [random.Random(settings.seed * 1_000_003 + t) for t in range(threads)]
    choosers = [OpChooser(mix, rng).next for rng in rngs]
    key_choosers = [
        key_chooser(distribution, settings.records, inserts, counter, rng) for rng in rngs
    ]

    def worker(t: int, start: int) -> int:
        rng, choose, next_key = rngs[t], choosers[t], key_choosers[t]
        get, put, scan, sync = calls.get, calls.put, calls.scan, calls.sync
        own = latencies[t]
        pool_size = len(pool)
        now_ns = time.perf_counter_ns
        deadline = start + deadline_ns
        last_sync = start
        count = 0
        for i in range(quotas[t]):
            op = choose()
            number = counter.take() if op == "insert" else next_key()
            key = keys[number]
            value = pool[(i + t) % pool_size]
            if interval_ns:
                due = start + i * interval_ns
                wait = due - now_ns()
                if wait > 0:
                    time.sleep(wait / 1e9)
                began = due
            else:
                began = now_ns()
            if op == "read":
                if get(key) is None:
                    missing[t] += 1
            elif op == "update" or op == "insert":
                put(key, value)
            elif op == "scan":
                scan(key, rng.randint(1, mix.max_scan_length))
            else:
                get(key)
                put(key, value)
            own[op].append(now_ns() - began)
            if op == "insert":
                counter.acknowledge(number)
            count += 1
            if count % CHECK_EVERY == 0:
                now = now_ns()
                if now > deadline:
                    break
                if harness_sync and t == 0 and now - last_sync >= settings.sync_interval * 1e9:
                    sync()
                    last_sync = now
        return count

    total, seconds = run_together(worker, threads)
    if db.sync_mode == "none":
        began_sync = time.perf_counter_ns()
        calls.sync()
        seconds += (time.perf_counter_ns() - began_sync) / 1e9
    histograms: dict[str, str] = {}
    counts: dict[str, int] = {}
    for op in mix.ops():
        values = [v for own in latencies for v in own[op]]
        counts[op] = len(values)
        if values:
            histograms[op] = encode(record_all(values))
    return MixResult(
        done=total,
        seconds=seconds,
        counts=counts,
        histograms=histograms,
        missing_reads=sum(missing),
        partial=total < settings.operations,
    )
