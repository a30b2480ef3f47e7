"""``seglog bench``: every store in its own process, alternating, several rounds.

Per round, each (store, sync mode) runs the main workloads in a fresh worker
process (:mod:`benchmarks.worker`), then each store runs the durable-write
workloads in another. The store order rotates from round to round, so no store is
always first on a cold machine or last on a hot one. Samples are gathered by a
:class:`~benchmarks.results.Collector`, summarised as medians, min-max spreads
and ratios to seglog, and written as a table, JSON, Markdown and an SVG chart.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.adapters import BASELINE, adapter_class, store_names
from benchmarks.adapters.base import MODE_PROMISE, SYNC_MODES, SyncMode
from benchmarks.machine import harness_overhead, machine_info
from benchmarks.progress import Progress
from benchmarks.render import render_document
from benchmarks.results import Collector, row_dicts
from benchmarks.task_spec import MARK, TaskSpec
from benchmarks.workloads import ALIASES, WORKLOADS, Group
from benchmarks.ycsb import Distribution

#: The project root: the directory holding the ``benchmarks`` package.
ROOT = Path(__file__).resolve().parent.parent

SCHEMA = 1

#: BenchConfig fields that say how to display, not what was measured.
_NOT_CONFIG = ("progress", "quiet", "command")


@dataclass
class BenchConfig:
    """What to run; defaults are the full ``seglog bench`` (about 10 minutes, 2 cores)."""

    stores: list[str] | None = None
    """Store names, plugin names or "module:Class" adapter paths; None: every built-in."""
    workloads: list[str] = field(default_factory=lambda: list(ALIASES["classic"]))
    modes: list[SyncMode] = field(default_factory=lambda: ["periodic"])
    size: int = 100_000
    rounds: int = 3
    value_size: int = 100
    seed: int = 1
    durable_ops: int = 20_000
    durable_seconds: float = 1.0
    sync_interval: float = 1.0
    budget_seconds: float = 5.0
    records: int = 10_000
    operations: int = 20_000
    threads: int = 1
    target_rate: float | None = None
    distribution: Distribution | None = None
    timeout: float = 1800.0
    out: str = "bench-results"
    json_path: str | None = None
    data_dir: str | None = None
    baseline: str = BASELINE
    progress: bool = True
    quiet: bool = False
    command: str = ""


#: What ``--quick`` changes: the whole run in well under a minute.
QUICK: dict[str, Any] = {
    "size": 3000,
    "rounds": 2,
    "durable_ops": 300,
    "durable_seconds": 0.15,
    "budget_seconds": 1.0,
    "records": 1000,
    "operations": 2000,
}


@dataclass
class Planned:
    round: int
    spec: TaskSpec


def resolve_stores(refs: list[str]) -> dict[str, str]:
    """Display name -> adapter reference, for store names and "module:Class" paths.

    Raises ValueError for an unknown name, a path that is no adapter, or two
    references that name the same store.
    """
    names: dict[str, str] = {}
    for ref in refs:
        try:
            name = adapter_class(ref).name
        except ImportError as exc:
            raise ValueError(f"cannot import the adapter {ref!r}: {exc}") from exc
        if name in names:
            raise ValueError(f"{ref!r} and {names[name]!r} are both called {name!r}")
        names[name] = ref
    return names


def store_table(refs: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Availability, version and per-mode durability of each store (by display name)."""
    table: dict[str, dict[str, Any]] = {}
    for name, ref in refs.items():
        cls = adapter_class(ref)
        reason = cls.missing()
        entry: dict[str, Any] = {"available": reason is None, "reason": reason, "version": None}
        if ref != name:
            entry["adapter"] = ref
        if reason is None:
            try:
                entry["version"] = cls.version()
            except Exception as exc:  # a version lookup must not stop the run
                entry["version"] = f"? ({exc})"
        modes: dict[str, dict[str, str] | None] = {}
        for mode in SYNC_MODES:
            d = cls.durability(mode)
            modes[mode] = None if d is None else {"level": str(d.level), "how": d.how}
        entry["durability"] = modes
        table[name] = entry
    return table


def in_group(workloads: list[str], group: str) -> list[str]:
    return [w for w in workloads if WORKLOADS[w].group == group]


def plan(
    config: BenchConfig, stores: list[str], data_dir: str, refs: dict[str, str] | None = None
) -> list[Planned]:
    """Every worker run, in execution order: rounds outermost, stores rotating."""
    refs = refs or {}
    main = in_group(config.workloads, "main")
    ycsb = in_group(config.workloads, "ycsb")
    durable = in_group(config.workloads, "durable")
    planned: list[Planned] = []
    for r in range(config.rounds):
        shift = r % len(stores) if stores else 0
        order = stores[shift:] + stores[:shift]
        groups: list[tuple[SyncMode, Group, list[str]]] = []
        if main:
            groups.extend((mode, "main", main) for mode in config.modes)
        if ycsb:
            groups.extend((mode, "ycsb", ycsb) for mode in config.modes)
        if durable:
            groups.append(("always", "durable", durable))
        for mode, group, workloads in groups:
            for store in order:
                ref = refs.get(store, store)
                if adapter_class(ref).durability(mode) is None:
                    continue
                directory = os.path.join(data_dir, f"{store}-{mode}-{group}-r{r + 1}")
                spec = TaskSpec(
                    store=store,
                    sync=mode,
                    group=group,
                    workloads=list(workloads),
                    directory=directory,
                    size=config.size,
                    value_size=config.value_size,
                    seed=config.seed + r,
                    durable_ops=config.durable_ops,
                    durable_seconds=config.durable_seconds,
                    sync_interval=config.sync_interval,
                    budget_seconds=config.budget_seconds,
                    adapter="" if ref == store else ref,
                    records=config.records,
                    operations=config.operations,
                    threads=config.threads,
                    target_rate=config.target_rate,
                    distribution=config.distribution,
                )
                planned.append(Planned(r, spec))
    return planned


EventHandler = Callable[[dict[str, Any]], None]


def run_worker(spec: TaskSpec, on_event: EventHandler, timeout: float) -> str | None:
    """Run one worker process; feed its events to ``on_event``; return an error or None."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile("w+") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=env,
        )
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        reported_error = False
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(spec.to_json())
            proc.stdin.close()
            for line in proc.stdout:
                if not line.startswith(MARK):
                    continue
                event = json.loads(line[len(MARK) :])
                reported_error = reported_error or event.get("event") == "error"
                on_event(event)
            code = proc.wait()
        finally:
            timer.cancel()
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        if code == 0 or reported_error:
            return None
        stderr.seek(0)
        tail = stderr.read()[-2000:].strip()
        if code < 0:
            return f"worker killed by signal {-code} (timeout {timeout:.0f} s?): {tail}"
        return f"worker exited with {code}: {tail}"


class _TaskEvents:
    """Feeds one worker's events to the collector and the progress bar."""

    def __init__(self, item: Planned, collector: Collector, progress: Progress, prefix: str):
        self.spec = item.spec
        self.round = item.round + 1
        self.collector = collector
        self.progress = progress
        self.prefix = prefix
        self.left = set(self.spec.workloads)

    def handle(self, event: dict[str, Any]) -> None:
        spec = self.spec
        kind, workload = event.get("event"), str(event.get("workload"))
        if kind == "start":
            self.progress.describe(f"{self.prefix} · {workload}")
        elif kind == "result":
            extra = event.get("extra", {})
            self.collector.add_result(spec.store, spec.sync, workload, event["value"], extra)
        elif kind == "skip":
            self.collector.add_skip(spec.store, spec.sync, workload, event["reason"])
        elif kind == "error":
            self.collector.add_error(
                store=spec.store,
                sync=spec.sync,
                group=spec.group,
                round=self.round,
                workload=event.get("workload"),
                error=event["error"],
            )
        if kind in ("result", "skip") and workload in self.left:
            self.left.discard(workload)
            self.progress.advance()


def run_bench(config: BenchConfig, console: Any | None = None) -> tuple[dict[str, Any], int]:
    """Run the benchmark, print and write its results; return (document, exit code)."""
    refs = resolve_stores(config.stores if config.stores is not None else store_names())
    names = list(refs)
    info = store_table(refs)
    stores = [n for n in names if info[n]["available"]]

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(config.data_dir) if config.data_dir else out / ".data"
    data_root.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="run-", dir=data_root)
    machine = machine_info(data_dir)
    if in_group(config.workloads, "ycsb"):
        machine["harness_overhead"] = harness_overhead()

    def say(text: str) -> None:
        if config.quiet:
            return
        if console is not None:
            console.print(text, highlight=False)
        else:
            print(text, file=sys.stderr)

    for name in names:
        if not info[name]["available"]:
            say(f"skipping {name}: {info[name]['reason']}")
    if config.baseline not in stores:
        say(f"note: baseline {config.baseline} is not available; no ratios")
    if machine["filesystem"] in ("tmpfs", "ramfs"):
        say(f"warning: {data_dir} is on {machine['filesystem']}: fsync costs nothing there")

    collector = Collector()
    planned = plan(config, stores, data_dir, refs)
    main = in_group(config.workloads, "main") + in_group(config.workloads, "ycsb")
    durable = in_group(config.workloads, "durable")
    for name in stores:
        wanted = [(mode, main) for mode in config.modes] + [("always", durable)]
        for mode, workloads in wanted:
            if info[name]["durability"][mode] is None:
                for w in workloads:
                    collector.add_skip(name, mode, w, f'cannot offer sync="{mode}"')

    started = datetime.now(UTC)
    clock = time.perf_counter()
    total = sum(len(p.spec.workloads) for p in planned)
    with Progress(total, config.progress and not config.quiet, console) as progress:
        for item in planned:
            spec = item.spec
            prefix = f"round {item.round + 1}/{config.rounds} · {spec.store} · {spec.sync}"
            progress.describe(prefix)
            events = _TaskEvents(item, collector, progress, prefix)
            began = time.perf_counter()
            error = run_worker(spec, events.handle, config.timeout)
            collector.tasks.append(
                {
                    "store": spec.store,
                    "sync": spec.sync,
                    "group": spec.group,
                    "round": item.round + 1,
                    "seconds": round(time.perf_counter() - began, 2),
                }
            )
            if error is not None:
                collector.add_error(
                    store=spec.store,
                    sync=spec.sync,
                    group=spec.group,
                    round=item.round + 1,
                    workload=None,
                    error=error,
                )
            progress.advance(len(events.left))
            shutil.rmtree(spec.directory, ignore_errors=True)
    shutil.rmtree(data_dir, ignore_errors=True)
    remove_if_empty(data_root)

    levels = {
        (name, mode): (d["level"] if d else "unsupported")
        for name in names
        for mode, d in info[name]["durability"].items()
    }
    rows = collector.rows(levels, config.baseline)
    document: dict[str, Any] = {
        "schema": SCHEMA,
        "command": config.command,
        "started": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 1),
        "machine": machine,
        "config": {k: v for k, v in asdict(config).items() if k not in _NOT_CONFIG},
        "baseline": config.baseline,
        "modes": {mode: MODE_PROMISE[mode] for mode in SYNC_MODES},
        "stores": info,
        "results": row_dicts(rows),
        "errors": collector.errors,
        "tasks": collector.tasks,
    }
    json_path = Path(config.json_path) if config.json_path else out / "results.json"
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(document, indent=2) + "\n")
    written = render_document(document, out, None if config.quiet else console, config.quiet)
    say(f"wrote {json_path}, {', '.join(str(p) for p in written)}")
    return document, 1 if collector.errors else 0


def remove_if_empty(path: Path) -> None:
    """Remove ``path`` if it is empty; leave it otherwise."""
    with contextlib.suppress(OSError):
        path.rmdir()
