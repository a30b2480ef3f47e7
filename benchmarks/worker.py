"""One benchmark task in its own process: ``python -m benchmarks.worker < spec.json``.

The runner starts one worker per (store, sync mode, group, round), so stores never
share a heap, a GIL, caches or leaked threads. The worker reads a
:class:`~benchmarks.task_spec.TaskSpec` as JSON on stdin and reports on stdout, one event per line,
each prefixed with :data:`~benchmarks.task_spec.MARK` so stray output from a library cannot be taken
for a result:

* ``{"event": "start", "workload": w}``
* ``{"event": "result", "workload": w, "value": x, "extra": {...}}``
* ``{"event": "skip", "workload": w, "reason": "..."}``
* ``{"event": "error", "workload": w, "error": "..."}`` (the worker then exits 1)
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from benchmarks.adapters import adapter_class
from benchmarks.adapters.base import Adapter, SyncMode
from benchmarks.task_spec import MARK, TaskSpec
from benchmarks.together import run_together
from benchmarks.workloads import (
    SCAN_WIDTH,
    WORKLOADS,
    make_key,
    scan_prefix,
    value_pool,
)
from benchmarks.ycsb import MIXES, ycsb_key
from benchmarks.ycsb_run import MixSettings, run_mix

#: Writes between two looks at the clock (for the harness's periodic sync and the
#: time budget): growing from the first to the last, so a store that takes a
#: second a write is caught early and a fast one is barely disturbed.
FIRST_CHUNK = 16
CHUNK = 1024

#: Keys whose values are checked after the timed random reads.
VERIFY_SAMPLE = 1000

Emit = Callable[[dict[str, Any]], None]


class TaskError(Exception):
    """A workload failed; carries the workload's name."""

    def __init__(self, workload: str, message: str) -> None:
        super().__init__(message)
        self.workload = workload


def disk_usage(path: str) -> tuple[int, int]:
    """(allocated bytes, apparent bytes) of every file under ``path``."""
    allocated = apparent = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(root, name))
            except FileNotFoundError:
                continue
            allocated += st.st_blocks * 512
            apparent += st.st_size
    return allocated, apparent


class Task:
    """Runs the workloads of one :class:`TaskSpec` and emits their events."""

    def __init__(self, spec: TaskSpec, emit: Emit) -> None:
        self.spec = spec
        self.emit = emit
        self.cls: type[Adapter] = adapter_class(spec.adapter or spec.store)
        self.wanted = set(spec.workloads)
        self.pool = value_pool(spec.value_size, spec.seed)

    # -- helpers -------------------------------------------------------------

    def adapter(self, name: str, sync: SyncMode | None = None) -> Adapter:
        path = os.path.join(self.spec.directory, name)
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(self.spec.directory, exist_ok=True)
        return self.cls(path, sync or self.spec.sync)

    def result(self, workload: str, value: float, **extra: Any) -> None:
        if workload in self.wanted:
            self.emit({"event": "result", "workload": workload, "value": value, "extra": extra})

    def skip(self, workload: str, reason: str) -> None:
        if workload in self.wanted:
            self.emit({"event": "skip", "workload": workload, "reason": reason})

    @contextmanager
    def step(self, workload: str) -> Iterator[None]:
        if workload in self.wanted:
            self.emit({"event": "start", "workload": workload})
        try:
            yield
        except TaskError:
            raise
        except Exception as exc:
            detail = "".join(traceback.format_exception_only(exc)).strip()
            raise TaskError(workload, detail) from exc

    def timed_writes(
        self,
        db: Adapter,
        keys: Sequence[Any],
        values: Sequence[bytes],
        budget: float | None = None,
    ) -> tuple[int, float]:
        """Put (or, with no values, delete) keys in order; return (count, seconds).

        In "periodic" mode a store that does not fsync by itself gets ``sync()``
        every sync_interval, which is what seglog promises; in "none" mode the
        closing ``sync()`` is timed, since it is what makes the writes durable.
        With a ``budget``, stop after the chunk that exceeds it (a store whose
        delete rewrites its whole index would otherwise take hours).
        """
        harness_sync = db.sync_mode == "periodic" and not db.self_syncing
        interval = self.spec.sync_interval
        chunks = []
        lo, width = 0, FIRST_CHUNK
        while lo < len(keys):
            chunks.append((keys[lo : lo + width], values[lo : lo + width]))
            lo, width = lo + width, min(CHUNK, width * 2)
        sync = db.sync
        put, delete = db.put, db.delete
        done = 0
        gc.collect()
        start = last = time.perf_counter()
        stop = start + budget if budget is not None else float("inf")
        for chunk_keys, chunk_values in chunks:
            if chunk_values:
                for key, value in zip(chunk_keys, chunk_values, strict=True):
                    put(key, value)
            else:
                for key in chunk_keys:
                    delete(key)
            done += len(chunk_keys)
            now = time.perf_counter()
            if harness_sync and now - last >= interval:
                sync()
                last = now
            if now > stop:
                break
        if db.sync_mode == "none":
            sync()
        return done, time.perf_counter() - start

    # -- groups --------------------------------------------------------------

    def run(self) -> None:
        sync = "always" if self.spec.group == "durable" else self.spec.sync
        if self.cls.durability(sync) is None:
            for name in self.spec.workloads:
                self.skip(name, f'{self.cls.name} cannot offer sync="{sync}"')
            return
        if self.spec.group == "main":
            self.run_main()
        elif self.spec.group == "ycsb":
            self.run_ycsb()
        else:
            self.run_durable()

    def run_main(self) -> None:
        spec = self.spec
        n = spec.size
        rng = random.Random(spec.seed)
        db = self.adapter("main")
        raw = [make_key(i) for i in range(n)]
        keys = [db.key(k) for k in raw]
        pool = self.pool
        values = [pool[i % len(pool)] for i in range(n)]

        if "fill-seq" in self.wanted:
            seq = self.adapter("seq")
            with self.step("fill-seq"):
                seq.open()
                count, seconds = self.timed_writes(seq, keys, values, spec.budget_seconds)
                seq.close()
            self.result("fill-seq", count / seconds, **self.partial(count, n))
            shutil.rmtree(seq.path, ignore_errors=True)

        if not self.wanted - {"fill-seq"}:
            return
        order = list(range(n))
        rng.shuffle(order)
        with self.step("fill-random"):
            db.open()
            _, seconds = self.timed_writes(db, [keys[i] for i in order], [values[i] for i in order])
            db.close()
        self.result("fill-random", n / seconds)

        if db.local_files:
            allocated, apparent = disk_usage(db.path)
            self.result("disk-size", allocated / n, apparent_bytes_per_key=apparent / n)
        else:
            self.skip("disk-size", "data kept by a server, outside the store's directory")

        with self.step("reopen"):
            gc.collect()
            start = time.perf_counter()
            db.open()
            seconds = time.perf_counter() - start
        self.result("reopen", seconds * 1000.0, per_key_us=seconds * 1e6 / n)

        if "index-memory" in self.wanted:
            if db.python_index:
                with self.step("index-memory"):
                    db.close()
                    gc.collect()
                    tracemalloc.start()
                    before = tracemalloc.get_traced_memory()[0]
                    db.open()
                    gc.collect()
                    used = tracemalloc.get_traced_memory()[0] - before
                    tracemalloc.stop()
                self.result("index-memory", used / n)
            else:
                self.skip(
                    "index-memory", "index outside the Python heap: tracemalloc cannot see it"
                )

        # Workloads that were not asked for are skipped, not run unreported; the
        # shuffles still happen, so a workload sees the same order either way.
        rng.shuffle(order)
        if "read-random" in self.wanted:
            read_keys = [keys[i] for i in order]
            with self.step("read-random"):
                get = db.get
                gc.collect()
                start = time.perf_counter()
                for key in read_keys:
                    get(key)
                seconds = time.perf_counter() - start
                self.verify(db, keys, values, rng)
            self.result("read-random", n / seconds)

        rng.shuffle(order)
        if "overwrite" in self.wanted:
            shift = len(pool) // 2
            new_values = [pool[(i + shift) % len(pool)] for i in order]
            with self.step("overwrite"):
                count, seconds = self.timed_writes(
                    db, [keys[i] for i in order], new_values, spec.budget_seconds
                )
            self.result("overwrite", count / seconds, **self.partial(count, n))

        if "prefix-scan" in self.wanted:
            if db.ordered:
                groups = max(1, (n + SCAN_WIDTH - 1) // SCAN_WIDTH)
                picks = [rng.randrange(groups) for _ in range(max(1, n // (2 * SCAN_WIDTH)))]
                prefixes = [scan_prefix(g) for g in picks]
                expected = sum(min(SCAN_WIDTH, n - g * SCAN_WIDTH) for g in picks)
                with self.step("prefix-scan"):
                    scan = db.scan_prefix
                    gc.collect()
                    start = time.perf_counter()
                    seen = 0
                    for prefix in prefixes:
                        seen += scan(prefix)
                    seconds = time.perf_counter() - start
                    if seen != expected:
                        raise TaskError("prefix-scan", f"scanned {seen} keys, expected {expected}")
                self.result("prefix-scan", seen / seconds, scans=len(prefixes))
            else:
                self.skip("prefix-scan", "keys kept in no order: a prefix scan is a full scan")

        rng.shuffle(order)
        if "delete" in self.wanted:
            doomed = [keys[i] for i in order[: max(1, n // 2)]]
            with self.step("delete"):
                count, seconds = self.timed_writes(db, doomed, [], spec.budget_seconds)
                if db.get(doomed[0]) is not None:
                    raise TaskError("delete", "a deleted key is still readable")
            self.result("delete", count / seconds, **self.partial(count, len(doomed)))
        db.close()
        shutil.rmtree(db.path, ignore_errors=True)

    @staticmethod
    def partial(count: int, planned: int) -> dict[str, Any]:
        """Extra fields for a result cut short by the time budget."""
        return {} if count >= planned else {"partial": f"{count} of {planned} ops (time budget)"}

    def verify(
        self, db: Adapter, keys: Sequence[Any], values: Sequence[bytes], rng: random.Random
    ) -> None:
        """Check a sample of values: a fast store that returns wrong data is no result."""
        for i in rng.sample(range(len(keys)), min(VERIFY_SAMPLE, len(keys))):
            got = db.get(keys[i])
            if got != values[i]:
                raise TaskError("read-random", f"key {keys[i]!r}: wrong or missing value")

    def run_ycsb(self) -> None:
        """Each YCSB mix in a fresh store: load the records, then run the mix."""
        spec = self.spec
        pool = self.pool
        for name in spec.workloads:
            mix = MIXES[name]
            if "scan" in mix.ops() and not self.cls.can_scan():
                self.skip(name, "no scan(start, count): no key order, or no range reads")
                continue
            db = self.adapter(name)
            with self.step(name):
                db.open()
                reach = spec.records + (spec.operations if "insert" in mix.ops() else 0)
                keys = [db.key(ycsb_key(n)) for n in range(reach)]
                values = [pool[n % len(pool)] for n in range(spec.records)]
                _, load_seconds = self.timed_writes(db, keys[: spec.records], values)
                settings = MixSettings(
                    records=spec.records,
                    operations=spec.operations,
                    threads=spec.threads,
                    target_rate=spec.target_rate,
                    distribution=spec.distribution,
                    seed=spec.seed,
                    budget_seconds=spec.budget_seconds,
                    sync_interval=spec.sync_interval,
                )
                result = run_mix(db, mix, settings, keys, pool)
                db.close()
                if result.missing_reads:
                    raise TaskError(
                        name, f"{result.missing_reads} reads of written keys found nothing"
                    )
            extra: dict[str, Any] = {
                "latency": result.histograms,
                "counts": result.counts,
                "load_ops_per_s": spec.records / load_seconds,
            }
            if result.partial:
                extra.update(self.partial(result.done, spec.operations))
            self.result(name, result.done / result.seconds, **extra)
            shutil.rmtree(db.path, ignore_errors=True)

    def run_durable(self) -> None:
        for name in self.spec.workloads:
            workload = WORKLOADS[name]
            db = self.adapter(name, "always")
            with self.step(name):
                db.open()
                before = db.counters()
                done, seconds = self.threaded_puts(db, workload.threads)
                after = db.counters()
                db.close()
            extra: dict[str, Any] = {"writes": done}
            if "fsyncs" in after:
                fsyncs = after["fsyncs"] - before.get("fsyncs", 0)
                extra["fsyncs_per_write"] = fsyncs / done if done else None
            self.result(name, done / seconds, **extra)
            shutil.rmtree(db.path, ignore_errors=True)

    def threaded_puts(self, db: Adapter, threads: int) -> tuple[int, float]:
        """Each thread puts its own keys until its share or the time budget is spent."""
        per_thread = max(1, self.spec.durable_ops // threads)
        put = db.locked() if threads > 1 else db.put
        value = self.pool[0]
        key_lists = [
            [db.key(b"dur:%02d:%010d" % (t, i)) for i in range(per_thread)] for t in range(threads)
        ]
        budget_ns = int(self.spec.durable_seconds * 1e9)

        def writer(t: int, start_ns: int) -> int:
            count = 0
            end = start_ns + budget_ns
            for key in key_lists[t]:
                put(key, value)
                count += 1
                if count & 7 == 0 and time.perf_counter_ns() > end:
                    break
            return count

        return run_together(writer, threads)


def emit_line(event: dict[str, Any]) -> None:
    sys.stdout.write(MARK + json.dumps(event) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    spec = TaskSpec.from_json(sys.stdin.read())
    try:
        Task(spec, emit_line).run()
    except TaskError as exc:
        emit_line({"event": "error", "workload": exc.workload, "error": str(exc)})
        return 1
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(exc)).strip()
        emit_line({"event": "error", "workload": None, "error": detail})
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
