"""What ``seglog bench`` measures: the workloads, their units, and the data they use.

The thirteen "classic" workloads each time one kind of operation; the six YCSB
core workloads (:mod:`benchmarks.ycsb`) mix them and record latencies.

Import-light on purpose: the runner and the per-store worker processes both use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal, TypeAlias

from benchmarks.ycsb import MIXES

Group: TypeAlias = Literal["main", "durable", "ycsb"]


@dataclass(frozen=True, slots=True)
class Workload:
    """One measured quantity."""

    name: str
    group: Group
    unit: str
    higher_is_better: bool
    about: str
    threads: int = 0


_ALL: tuple[Workload, ...] = (
    Workload("fill-seq", "main", "ops/s", True, "put N new keys in ascending order"),
    Workload("fill-random", "main", "ops/s", True, "put N new keys in random order"),
    Workload("overwrite", "main", "ops/s", True, "put N existing keys again, random order"),
    Workload("read-random", "main", "ops/s", True, "get N existing keys in random order"),
    Workload(
        "prefix-scan", "main", "keys/s", True, "scans of 100-key prefixes, keys and values read"
    ),
    Workload("delete", "main", "ops/s", True, "delete N/2 existing keys in random order"),
    Workload("reopen", "main", "ms", False, "open the store holding N keys (after close)"),
    Workload("disk-size", "main", "B/key", False, "bytes allocated on disk after fill-random"),
    Workload(
        "index-memory", "main", "B/key", False, "Python heap kept by an open store (tracemalloc)"
    ),
    Workload("durable-1t", "durable", "ops/s", True, "fsynced puts, 1 thread", threads=1),
    Workload("durable-4t", "durable", "ops/s", True, "fsynced puts, 4 threads", threads=4),
    Workload("durable-8t", "durable", "ops/s", True, "fsynced puts, 8 threads", threads=8),
    Workload("durable-16t", "durable", "ops/s", True, "fsynced puts, 16 threads", threads=16),
    *(
        Workload(
            m.name, "ycsb", "ops/s", True, f"YCSB {m.name[-1].upper()}: {m.about}, {m.distribution}"
        )
        for m in MIXES.values()
    ),
)

WORKLOADS: dict[str, Workload] = {w.name: w for w in _ALL}

#: Names accepted by ``--workloads`` besides single workload names.
ALIASES: dict[str, tuple[str, ...]] = {
    "all": tuple(WORKLOADS),
    "classic": tuple(w.name for w in _ALL if w.group != "ycsb"),
    "ycsb": tuple(MIXES),
    "writes": ("fill-seq", "fill-random", "overwrite", "delete"),
    "reads": ("read-random", "prefix-scan"),
    "open": ("reopen", "disk-size", "index-memory"),
    "durable": ("durable-1t", "durable-4t", "durable-8t", "durable-16t"),
}


def resolve_workloads(spec: str) -> list[str]:
    """Expand a comma-separated list of workload names and aliases, in canonical order."""
    wanted: set[str] = set()
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in ALIASES:
            wanted.update(ALIASES[part])
        elif part in WORKLOADS:
            wanted.add(part)
        else:
            known = ", ".join([*ALIASES, *WORKLOADS])
            raise ValueError(f"unknown workload {part!r} (known: {known})")
    return [name for name in WORKLOADS if name in wanted]


#: Keys of the main workloads: fixed width, so byte order equals numeric order and
#: every run of 100 consecutive numbers shares a 14-byte prefix.
KEY_FORMAT = b"key:%012d"
SCAN_WIDTH = 100
PREFIX_FORMAT = b"key:%010d"


def make_key(i: int) -> bytes:
    return KEY_FORMAT % i


def scan_prefix(group: int) -> bytes:
    """The prefix shared by keys ``group*100 .. group*100+99``."""
    return PREFIX_FORMAT % group


def value_pool(size: int, seed: int, count: int = 1024) -> list[bytes]:
    """Random (incompressible) values, so compressing stores gain nothing."""
    rng = random.Random(seed)
    return [rng.randbytes(size) for _ in range(count)]
