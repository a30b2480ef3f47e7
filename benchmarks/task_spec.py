"""What the runner hands a benchmark worker, and how the worker's events are marked.

The runner (:mod:`benchmarks.runner`) writes a :class:`TaskSpec` as JSON to a
worker process (:mod:`benchmarks.worker`) and reads back the lines that start
with :data:`MARK`; this module is all the two share, so the runner does not
import the workloads and adapters the worker runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.adapters.base import SyncMode
from benchmarks.workloads import Group
from benchmarks.ycsb import Distribution

#: Prefix of every event line a worker prints, so stray output from a library
#: cannot be taken for a result.
MARK = "@@bench "


@dataclass
class TaskSpec:
    """Everything a worker needs; JSON round-trips through :func:`asdict`."""

    store: str
    sync: SyncMode
    group: Group
    workloads: list[str]
    directory: str
    size: int = 100_000
    value_size: int = 100
    seed: int = 0
    durable_ops: int = 20_000
    durable_seconds: float = 1.0
    sync_interval: float = 1.0
    budget_seconds: float = 5.0
    adapter: str = ""
    """Where the adapter class comes from (a store name or "module:Class"); "" = store."""
    records: int = 10_000
    operations: int = 20_000
    threads: int = 1
    target_rate: float | None = None
    distribution: Distribution | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> TaskSpec:
        return cls(**json.loads(text))
