"""What results.json says about the machine: the facts a reader needs to judge
absolute numbers, and what the harness itself costs per operation."""

from __future__ import annotations

import os
import platform
import tempfile
from importlib.metadata import PackageNotFoundError, version
from typing import Any

#: Distributions whose versions a run records, when installed.
PACKAGES = (
    "seglog",
    "sortedcontainers",
    "crc32c",
    "hdrhistogram",
    "plyvel",
    "rocksdict",
    "lmdb",
    "semidbm",
    "diskcache",
    "psycopg",
)

#: Operations of the harness-overhead measurement.
OVERHEAD_OPS = 20_000


def machine_info(data_dir: str) -> dict[str, Any]:
    """CPU, cores, memory, kernel, filesystem of ``data_dir``, Python, packages."""
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpus": os.cpu_count(),
        "cpu": platform.processor() or platform.machine(),
        "memory": "?",
        "filesystem": filesystem_of(data_dir),
        "packages": package_versions(),
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


def package_versions() -> dict[str, str]:
    found: dict[str, str] = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


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


def harness_overhead(operations: int = OVERHEAD_OPS) -> dict[str, float]:
    """Time per operation of YCSB workload A (one thread) on a store that does
    nothing: the harness's own share of every latency and rate it reports."""
    from benchmarks.adapters.null import NullAdapter
    from benchmarks.latency import merge, summarize
    from benchmarks.workloads import value_pool
    from benchmarks.ycsb import MIXES, ycsb_key
    from benchmarks.ycsb_run import MixSettings, run_mix

    with tempfile.TemporaryDirectory() as tmp:
        db = NullAdapter(tmp, "periodic")
        db.open()
        records = 1000
        keys = [ycsb_key(n) for n in range(records)]
        settings = MixSettings(records=records, operations=operations)
        result = run_mix(db, MIXES["ycsb-a"], settings, keys, value_pool(100, 0, 16))
        db.close()
    timed = summarize(merge(result.histograms.values()))
    return {
        "ns_per_op": round(result.seconds * 1e9 / max(1, result.done), 1),
        "timed_call_p50_ns": round(timed.get("p50", 0.0) * 1000, 1),
    }
