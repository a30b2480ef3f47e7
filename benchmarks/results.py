"""Samples in, medians, spreads and ratios out: the numbers ``seglog bench`` reports.

A ratio is always ``store median / baseline median`` for the same sync mode and
workload, measured in the same run. For "higher is better" units a ratio above 1
means the store beat seglog; for "lower is better" units it means it lost.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from benchmarks.workloads import WORKLOADS


@dataclass
class Row:
    """One store, one sync mode, one workload, over all rounds."""

    store: str
    sync: str
    workload: str
    unit: str
    higher_is_better: bool
    samples: list[float]
    median: float | None
    min: float | None
    max: float | None
    spread: float | None
    """(max - min) / median: the relative width of the min-max range."""
    ratio: float | None
    """median / the baseline's median (same sync, same workload)."""
    level: str
    """Durability level of this store in this sync mode (see adapters.base.Level)."""
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, dict[str, float]] = field(default_factory=dict)
    """Per operation type: percentiles, max and mean (µs) over every round's operations."""
    histograms: dict[str, list[str]] = field(default_factory=dict)
    """Per operation type: each round's encoded HdrHistogram (ns), for re-reading."""


@dataclass
class Collector:
    """Accumulates events from the workers of every round."""

    samples: dict[tuple[str, str, str], list[float]] = field(
        default_factory=lambda: defaultdict(list)
    )
    extras: dict[tuple[str, str, str], list[dict[str, Any]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    notes: dict[tuple[str, str, str], str] = field(default_factory=dict)
    errors: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    """Wall time of each worker process, for seeing where a run's time goes."""
    histograms: dict[tuple[str, str, str], dict[str, list[str]]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def add_result(
        self, store: str, sync: str, workload: str, value: float, extra: dict[str, Any]
    ) -> None:
        self.samples[store, sync, workload].append(value)
        extra = dict(extra)
        for op, encoded in extra.pop("latency", {}).items():
            self.histograms[store, sync, workload].setdefault(op, []).append(encoded)
        if extra:
            self.extras[store, sync, workload].append(extra)

    def add_skip(self, store: str, sync: str, workload: str, reason: str) -> None:
        self.notes[store, sync, workload] = reason

    def add_error(self, **error: Any) -> None:
        self.errors.append(error)

    def rows(self, levels: dict[tuple[str, str], str], baseline: str) -> list[Row]:
        """Summaries of every (store, sync, workload) that produced a sample or a note."""
        keys = sorted(
            set(self.samples) | set(self.notes),
            key=lambda k: (k[1], list(WORKLOADS).index(k[2]), k[0]),
        )
        medians = {k: statistics.median(v) for k, v in self.samples.items() if v}
        rows = []
        for key in keys:
            store, sync, workload = key
            spec = WORKLOADS[workload]
            samples = self.samples.get(key, [])
            median = medians.get(key)
            base = medians.get((baseline, sync, workload))
            ratio = median / base if median is not None and base else None
            lo = min(samples) if samples else None
            hi = max(samples) if samples else None
            spread = (hi - lo) / median if median and lo is not None and hi is not None else None
            rows.append(
                Row(
                    store=store,
                    sync=sync,
                    workload=workload,
                    unit=spec.unit,
                    higher_is_better=spec.higher_is_better,
                    samples=samples,
                    median=median,
                    min=lo,
                    max=hi,
                    spread=spread,
                    ratio=ratio,
                    level=levels.get((store, sync), ""),
                    note=self.notes.get(key, ""),
                    extra=merge_extras(self.extras.get(key, [])),
                    latency=latency_summary(self.histograms.get(key, {})),
                    histograms=self.histograms.get(key, {}),
                )
            )
        return rows


def merge_extras(extras: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians of numeric extras across rounds; the last value of anything else."""
    merged: dict[str, Any] = {}
    for name in {k for e in extras for k in e}:
        values = [e[name] for e in extras if name in e]
        numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
        merged[name] = statistics.median(numbers) if len(numbers) == len(values) else values[-1]
    return merged


def latency_summary(histograms: dict[str, list[str]]) -> dict[str, dict[str, float]]:
    """Each operation type's percentiles over the merged rounds."""
    from benchmarks.latency import merge, summarize

    return {op: summarize(merge(encoded)) for op, encoded in histograms.items()}


def row_dicts(rows: list[Row]) -> list[dict[str, Any]]:
    return [asdict(r) for r in rows]
