"""Sweeps: the same run at several value sizes and thread counts, drawn as lines.

``seglog bench --value-size 16,1024,65536 --threads 1,4`` runs the whole
benchmark once per (value size, thread count) point, each into its own
``OUT/v<size>-t<threads>/`` (results.json, tables, charts), and then writes
``OUT/sweep.json`` (the medians and p99 latencies of every point) and
``OUT/sweep.svg``: per workload, a line per store across the swept axis.
``--threads`` applies to the YCSB workloads; the classic ones have their own
``durable-*t`` thread counts.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.runner import BenchConfig, run_bench
from benchmarks.svgchart import LinePanel, render_lines_svg
from benchmarks.workloads import WORKLOADS


def run_sweep(
    config: BenchConfig, value_sizes: list[int], threads: list[int], console: Any | None
) -> int:
    """Run every point; write sweep.json and sweep.svg; return the worst exit code."""
    out = Path(config.out)
    points: list[dict[str, Any]] = []
    code = 0
    for size in value_sizes:
        for count in threads:
            where = out / f"v{size}-t{count}"
            point = replace(config, value_size=size, threads=count, out=str(where), json_path=None)
            document, point_code = run_bench(point, console)
            code = max(code, point_code)
            points.append(
                {
                    "value_size": size,
                    "threads": count,
                    "results_json": str(where / "results.json"),
                    "rows": [_summary(r) for r in document["results"] if r["median"] is not None],
                }
            )
    sweep = {"command": config.command, "value_sizes": value_sizes, "threads": threads}
    sweep["points"] = points
    (out / "sweep.json").write_text(json.dumps(sweep, indent=2) + "\n")
    (out / "sweep.svg").write_text(render_lines_svg(sweep_panels(sweep), "seglog bench sweep"))
    return code


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    p99 = {op: s.get("p99") for op, s in row.get("latency", {}).items()}
    return {k: row[k] for k in ("store", "sync", "workload", "unit", "median")} | {"p99": p99}


def sweep_panels(sweep: dict[str, Any]) -> list[LinePanel]:
    """A panel per (workload, sync mode, fixed value of the other axis), lines per store."""
    sizes, threads = sweep["value_sizes"], sweep["threads"]
    axis = "threads" if len(sizes) == 1 and len(threads) > 1 else "value_size"
    other = "value_size" if axis == "threads" else "threads"
    xs = threads if axis == "threads" else sizes
    panels: list[LinePanel] = []
    keys = {(r["workload"], r["sync"]) for p in sweep["points"] for r in p["rows"]}
    for workload in WORKLOADS:
        for sync in sorted(s for w, s in keys if w == workload):
            for fixed in dict.fromkeys(p[other] for p in sweep["points"]):
                series: dict[str, list[float | None]] = {}
                for x_index, x in enumerate(xs):
                    for p in sweep["points"]:
                        if p[axis] != x or p[other] != fixed:
                            continue
                        for r in p["rows"]:
                            if r["workload"] == workload and r["sync"] == sync:
                                line = series.setdefault(r["store"], [None] * len(xs))
                                line[x_index] = r["median"]
                if not series:
                    continue
                label = "value bytes" if axis == "value_size" else "threads"
                fixed_text = f"{fixed} threads" if other == "threads" else f"{fixed} B values"
                unit = WORKLOADS[workload].unit
                caption = f'{workload} · {unit} · sync="{sync}" · {fixed_text}'
                panels.append(LinePanel(caption, label, [float(x) for x in xs], series))
    return panels
