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
import platform
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
from benchmarks.report import build_views, print_views, to_markdown
from benchmarks.results import Collector, Row, row_dicts
from benchmarks.svgchart import render_svg
from benchmarks.worker import MARK, TaskSpec
from benchmarks.workloads import WORKLOADS

#: The project root: the directory holding the ``benchmarks`` package.
ROOT = Path(__file__).resolve().parent.parent

SCHEMA = 1

#: BenchConfig fields that say how to display, not what was measured.
_NOT_CONFIG = ("progress", "quiet", "command")


@dataclass
class BenchConfig:
    """What to run; defaults are the full ``seglog bench`` (about 10 minutes, 2 cores)."""

    stores: list[str] | None = None
    workloads: list[str] = field(default_factory=lambda: list(WORKLOADS))
    modes: list[SyncMode] = field(default_factory=lambda: ["periodic"])
    size: int = 100_000
    rounds: int = 3
    value_size: int = 100
    seed: int = 1
    durable_ops: int = 20_000
    durable_seconds: float = 1.0
    sync_interval: float = 1.0
    budget_seconds: float = 5.0
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
}


@dataclass
class Planned:
    round: int
    spec: TaskSpec


def machine_info(data_dir: str) -> dict[str, Any]:
    """The facts a reader needs to judge absolute numbers."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory": "?",
        "filesystem": filesystem_of(data_dir),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["memory"] = f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB"
                    break
    except OSError:
        pass
    return info


def filesystem_of(path: str) -> str:
    """The type of the filesystem holding ``path`` (from /proc/mounts), or '?'."""
    target = os.path.realpath(path)
    best, kind = "", "?"
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mount = parts[1]
                inside = target == mount or target.startswith(mount.rstrip("/") + "/")
                if inside and len(mount) > len(best):
                    best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


def store_table(names: list[str]) -> dict[str, dict[str, Any]]:
    """Availability, version and per-mode durability of each named store."""
    table: dict[str, dict[str, Any]] = {}
    for name in names:
        cls = adapter_class(name)
        reason = cls.missing()
        entry: dict[str, Any] = {"available": reason is None, "reason": reason, "version": None}
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


def plan(config: BenchConfig, stores: list[str], data_dir: str) -> list[Planned]:
    """Every worker run, in execution order: rounds outermost, stores rotating."""
    main = [w for w in config.workloads if WORKLOADS[w].group == "main"]
    durable = [w for w in config.workloads if WORKLOADS[w].group == "durable"]
    planned: list[Planned] = []
    for r in range(config.rounds):
        shift = r % len(stores) if stores else 0
        order = stores[shift:] + stores[:shift]
        groups: list[tuple[SyncMode, str, list[str]]] = []
        if main:
            groups.extend((mode, "main", main) for mode in config.modes)
        if durable:
            groups.append(("always", "durable", durable))
        for mode, group, workloads in groups:
            for store in order:
                if adapter_class(store).durability(mode) is None:
                    continue
                directory = os.path.join(data_dir, f"{store}-{mode}-{group}-r{r + 1}")
                spec = TaskSpec(
                    store=store,
                    sync=mode,
                    group="main" if group == "main" else "durable",
                    workloads=list(workloads),
                    directory=directory,
                    size=config.size,
                    value_size=config.value_size,
                    seed=config.seed + r,
                    durable_ops=config.durable_ops,
                    durable_seconds=config.durable_seconds,
                    sync_interval=config.sync_interval,
                    budget_seconds=config.budget_seconds,
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


class _Progress:
    """A rich progress bar, or nothing when rich is missing or progress is off."""

    def __init__(self, total: int, enabled: bool, console: Any | None) -> None:
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        try:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
        except ImportError:
            return
        self._bar = Progress(
            TextColumn("[progress.description]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._bar.add_task("starting", total=total)

    def __enter__(self) -> _Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def describe(self, text: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=text)

    def advance(self, steps: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, steps)


class _TaskEvents:
    """Feeds one worker's events to the collector and the progress bar."""

    def __init__(self, item: Planned, collector: Collector, progress: _Progress, prefix: str):
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
    names = config.stores if config.stores is not None else store_names()
    unknown = [n for n in names if n not in store_names()]
    if unknown:
        raise ValueError(
            f"unknown store(s) {', '.join(unknown)}; known: {', '.join(store_names())}"
        )
    info = store_table(names)
    stores = [n for n in names if info[n]["available"]]

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    data_root = Path(config.data_dir) if config.data_dir else out / ".data"
    data_root.mkdir(parents=True, exist_ok=True)
    data_dir = tempfile.mkdtemp(prefix="run-", dir=data_root)
    machine = machine_info(data_dir)

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
    planned = plan(config, stores, data_dir)
    main = [w for w in config.workloads if WORKLOADS[w].group == "main"]
    durable = [w for w in config.workloads if WORKLOADS[w].group == "durable"]
    for name in stores:
        wanted = [(mode, main) for mode in config.modes] + [("always", durable)]
        for mode, workloads in wanted:
            if info[name]["durability"][mode] is None:
                for w in workloads:
                    collector.add_skip(name, mode, w, f'cannot offer sync="{mode}"')

    started = datetime.now(UTC)
    clock = time.perf_counter()
    total = sum(len(p.spec.workloads) for p in planned)
    with _Progress(total, config.progress and not config.quiet, console) as progress:
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


def render_document(
    document: dict[str, Any], out: Path, console: Any | None, quiet: bool = False
) -> list[Path]:
    """Write results.md and chart.svg for a results document; print its tables.

    Used at the end of a run, and by ``seglog bench --render results.json`` to
    redraw an earlier run's outputs without measuring again.
    """
    rows = [Row(**r) for r in document["results"]]
    info: dict[str, dict[str, Any]] = document["stores"]
    stores = [name for name, entry in info.items() if entry["available"]]
    baseline: str = document["baseline"]
    durability = {name: entry["durability"] for name, entry in info.items()}
    views = build_views(rows, stores, durability, baseline)
    config = document["config"]
    rounds = config["rounds"]
    title = (
        f"seglog bench: {config['size']:,} keys, {config['value_size']}-byte values, "
        f"median of {rounds} round{'s' if rounds != 1 else ''}"
    )
    out.mkdir(parents=True, exist_ok=True)
    md, svg = out / "results.md", out / "chart.svg"
    md.write_text(to_markdown(views, document))
    svg.write_text(render_svg(rows, stores, title, baseline))
    if not quiet:
        print_views(views, console)
        for err in document["errors"]:
            message = (
                f"ERROR {err['store']} sync={err['sync']} round {err['round']} "
                f"{err['workload'] or ''}: {err['error']}"
            )
            if console is not None:
                console.print(message, highlight=False)
            else:
                print(message, file=sys.stderr)
    return [md, svg]


def remove_if_empty(path: Path) -> None:
    """Remove ``path`` if it is empty; leave it otherwise."""
    with contextlib.suppress(OSError):
        path.rmdir()
