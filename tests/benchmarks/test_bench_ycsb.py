"""YCSB runs on a store written here: operation counts, latencies, pacing, adapters.

No assertion on speed. The one test that involves time (coordinated omission)
plants a 200 ms stall and only asks whether it shows up in many latencies or in
one, with margins a loaded machine cannot close.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
import xml.etree.ElementTree as ET
from bisect import bisect_left, insort
from pathlib import Path
from typing import Any

import pytest

import benchmarks.adapters as registry
from benchmarks.adapters import adapter_class, store_names
from benchmarks.adapters.base import Adapter, Durability, Level, SyncMode
from benchmarks.latency import merge, summarize
from benchmarks.workloads import Group, value_pool
from benchmarks.ycsb import MIXES, ycsb_key
from benchmarks.ycsb_run import MixSettings, run_mix
from seglog_cli.main import main

#: A complete adapter, as docs/BENCHMARKS.md shows one: a sorted dict.
ADAPTER_SOURCE = """
import bisect
from benchmarks.adapters.base import Adapter, Durability, Level


class SortedDictAdapter(Adapter):
    name = "sorted-dict"
    module = "bisect"

    @classmethod
    def durability(cls, sync):
        return Durability(Level.WEAKER, "in memory: nothing survives")

    def open(self):
        self.data, self.keys = getattr(self, "data", {}), getattr(self, "keys", [])
        self.get = self.data.get
        self.put, self.delete = self._put, self._delete

    def _put(self, key, value):
        if key not in self.data:
            bisect.insort(self.keys, key)
        self.data[key] = value

    def _delete(self, key):
        if self.data.pop(key, None) is not None:
            self.keys.remove(key)

    def scan(self, start, count):
        i = bisect.bisect_left(self.keys, start)
        return sum(1 for k in self.keys[i : i + count] if self.data[k] is not None)

    def scan_prefix(self, prefix):
        return sum(1 for k in self.keys if k.startswith(prefix))

    def sync(self):
        pass

    def close(self):
        pass
"""


class DictStore(Adapter):
    """In-memory ordered store whose calls can be slowed down on purpose."""

    name = "dict"
    module = "bisect"
    threadsafe = False

    stall_at: int | None = None
    stall_seconds = 0.0

    @classmethod
    def durability(cls, sync: SyncMode) -> Durability:
        return Durability(Level.WEAKER, "in memory")

    def open(self) -> None:
        self.data: dict[Any, bytes] = {}
        self.sorted_keys: list[Any] = []
        self.calls = 0
        self.get, self.put, self.delete = self._get, self._put, self._delete

    def _get(self, key: Any) -> bytes | None:
        self.calls += 1
        if self.calls == self.stall_at:
            time.sleep(self.stall_seconds)
        return self.data.get(key)

    def _put(self, key: Any, value: bytes) -> None:
        if key not in self.data:
            insort(self.sorted_keys, key)
        self.data[key] = value

    def _delete(self, key: Any) -> None:
        if self.data.pop(key, None) is not None:
            self.sorted_keys.remove(key)

    def scan(self, start: Any, count: int) -> int:
        i = bisect_left(self.sorted_keys, start)
        return len(self.sorted_keys[i : i + count])

    def sync(self) -> None:
        pass

    def close(self) -> None:
        pass


def _loaded(records: int, operations: int, tmp_path: Path) -> tuple[DictStore, list[bytes]]:
    db = DictStore(str(tmp_path), "none")
    db.open()
    keys = [ycsb_key(n) for n in range(records + operations)]
    for key in keys[:records]:
        db.put(key, b"v")
    return db, keys


@pytest.mark.parametrize("name", sorted(MIXES))
@pytest.mark.parametrize("threads", [1, 3])
def test_each_mix_runs_its_operation_counts_within_one_percent(
    name: str, threads: int, tmp_path: Path
) -> None:
    mix = MIXES[name]
    operations = 20_000
    db, keys = _loaded(1000, operations, tmp_path)
    settings = MixSettings(records=1000, operations=operations, threads=threads, seed=4)
    result = run_mix(db, mix, settings, keys, value_pool(10, 0, 8))
    assert result.done == operations and not result.partial
    assert result.missing_reads == 0
    assert sum(result.counts.values()) == operations
    for op, share in mix.proportions.items():
        assert abs(result.counts[op] - share * operations) <= 0.01 * operations, op
        summary = summarize(merge([result.histograms[op]]))
        assert summary["count"] == result.counts[op]
        assert 0 < summary["p50"] <= summary["p99"] <= summary["p99.9"] <= summary["max"]
    if "insert" in mix.proportions:
        assert len(db.data) == 1000 + result.counts["insert"]


def _at_least(encoded: str, ns: float) -> int:
    """How many recorded latencies are at least ``ns``."""
    hist = merge([encoded])
    return sum(
        step.count_at_value_iterated_to
        for step in hist.get_recorded_iterator()
        if step.value_iterated_to >= ns
    )


def test_target_rate_measures_from_the_intended_start(tmp_path: Path) -> None:
    """A 200 ms stall delays every operation queued behind it; with a target rate
    their latencies show it (no coordinated omission), without one only the
    stalled call does."""

    def slow_reads(target_rate: float | None) -> int:
        db, keys = _loaded(100, 0, tmp_path)
        db.stall_at, db.stall_seconds = 50, 0.2
        settings = MixSettings(records=100, operations=400, target_rate=target_rate)
        result = run_mix(db, MIXES["ycsb-c"], settings, keys, [b"v"])
        return _at_least(result.histograms["read"], 100e6)

    assert slow_reads(1000.0) >= 30
    assert slow_reads(None) <= 3


def test_a_store_without_order_skips_workload_e(tmp_path: Path) -> None:
    from benchmarks.task_spec import TaskSpec
    from benchmarks.worker import Task

    events: list[dict[str, Any]] = []
    spec = TaskSpec(
        store="dbm",
        sync="none",
        group="ycsb",
        workloads=["ycsb-c", "ycsb-e"],
        directory=str(tmp_path),
        records=200,
        operations=300,
    )
    Task(TaskSpec.from_json(spec.to_json()), events.append).run()
    by_kind = {(e["event"], e["workload"]) for e in events}
    assert ("result", "ycsb-c") in by_kind and ("skip", "ycsb-e") in by_kind
    (result,) = [e for e in events if e["event"] == "result"]
    assert set(result["extra"]["latency"]) == {"read"}
    assert result["extra"]["counts"] == {"read": 300}


def test_users_adapter_runs_every_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--adapter module:Class`` drives a store written here through the classic
    and YCSB workloads, in worker processes, beside seglog."""
    (tmp_path / "my_store.py").write_text(textwrap.dedent(ADAPTER_SOURCE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    out = tmp_path / "out"
    args = ["--size", "200", "--records", "200", "--operations", "400", "--rounds", "1"]
    workloads = "fill-random,read-random,prefix-scan,ycsb"
    adapter = ["--adapter", "my_store:SortedDictAdapter"]
    code = main(
        ["bench", *args, "--workloads", workloads, *adapter, "--out", str(out), "--no-progress"]
    )
    doc = json.loads((out / "results.json").read_text())
    assert code == 0, doc["errors"]
    assert list(doc["stores"]) == ["seglog", "sorted-dict"]
    assert doc["stores"]["sorted-dict"]["adapter"] == "my_store:SortedDictAdapter"
    rows = {(r["store"], r["workload"]): r for r in doc["results"]}
    for workload in ["fill-random", "read-random", "prefix-scan", *MIXES]:
        row = rows["sorted-dict", workload]
        assert row["median"] > 0 and row["ratio"] > 0, workload
    assert set(rows["sorted-dict", "ycsb-e"]["latency"]) == {"scan", "insert"}
    assert rows["seglog", "ycsb-f"]["latency"]["rmw"]["p99"] > 0
    assert "harness_overhead" in doc["machine"] and doc["machine"]["kernel"]
    assert "hdrhistogram" in doc["machine"]["packages"]
    ET.parse(out / "latency.svg")
    assert "YCSB latency" in (out / "results.md").read_text()


def test_adapters_come_from_entry_points_and_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    path = "benchmarks.adapters.null:NullAdapter"
    monkeypatch.setattr(registry, "_plugins", lambda: {"nothing": path})
    assert store_names()[-1] == "nothing"
    assert adapter_class("nothing").name == "null"
    assert adapter_class(path).name == "null"
    with pytest.raises(ValueError, match="unknown store"):
        adapter_class("oracle")
    with pytest.raises(ValueError, match="not a subclass"):
        adapter_class("benchmarks.ycsb:Mix")
    with pytest.raises(ImportError):
        adapter_class("no_such_module_here:Store")


def test_bad_adapter_is_a_clear_error(tmp_path: Path) -> None:
    assert main(["bench", "--adapter", "benchmarks.ycsb:Mix", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--adapter", "nowhere_at_all:X", "--out", str(tmp_path)]) == 2
    with pytest.raises(SystemExit):  # argparse's own refusal
        main(["bench", "--threads", "0", "--out", str(tmp_path)])


def test_the_adapter_in_the_docs_is_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/BENCHMARKS.md's example adapter, as printed there, runs the workloads."""
    from benchmarks.task_spec import TaskSpec
    from benchmarks.worker import Task

    docs = (Path(__file__).parents[2] / "docs" / "BENCHMARKS.md").read_text()
    section = docs.split("## Benchmarking your own store", 1)[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    assert len(source.splitlines()) <= 30
    (tmp_path / "my_bench.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    events: list[dict[str, Any]] = []
    runs: list[tuple[Group, list[str]]] = [("main", ["fill-random", "read-random"])]
    runs.append(("ycsb", ["ycsb-a"]))
    for group, workloads in runs:
        spec = TaskSpec(
            store="shelve",
            adapter="my_bench:ShelveAdapter",
            sync="periodic",
            group=group,
            workloads=workloads,
            directory=str(tmp_path / group),
            size=200,
            records=200,
            operations=300,
        )
        Task(spec, events.append).run()
    done = {e["workload"] for e in events if e["event"] == "result"}
    assert done == {"fill-random", "read-random", "ycsb-a"}, events


class SameThreadStore(DictStore):
    """Refuses calls from any thread but the one that opened it, as sqlite3 does."""

    self_syncing = False

    def open(self) -> None:
        super().open()
        self.opener = threading.get_ident()
        get, put = self.get, self.put

        def checked_get(key: Any) -> bytes | None:
            self.check()
            return get(key)

        def checked_put(key: Any, value: bytes) -> object:
            self.check()
            return put(key, value)

        self.get, self.put = checked_get, checked_put

    def check(self) -> None:
        if threading.get_ident() != self.opener:
            raise RuntimeError("used from another thread")

    def sync(self) -> None:
        self.check()


def test_one_client_thread_is_the_callers_own(tmp_path: Path) -> None:
    """With one thread, every call (harness syncs included) comes from the thread
    that opened the store: diskcache failed in the first full run without it."""
    db = SameThreadStore(str(tmp_path), "periodic")
    db.open()
    keys = [ycsb_key(n) for n in range(300)]
    for key in keys[:200]:
        db.put(key, b"v")
    settings = MixSettings(records=200, operations=500, sync_interval=0.0)
    result = run_mix(db, MIXES["ycsb-a"], settings, keys, [b"v"])
    assert result.done == 500
