"""A results document (results.json) in, tables and charts out.

Used at the end of a run, and by ``seglog bench --render results.json`` to
redraw an earlier run's outputs without measuring again.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.report import (
    build_latency_views,
    build_views,
    noise_warning,
    print_views,
    to_markdown,
)
from benchmarks.results import Row
from benchmarks.svgchart import render_latency_svg, render_svg


def run_title(config: dict[str, Any], rows: list[Row]) -> str:
    rounds = config["rounds"]
    parts = ["seglog bench"]
    if any(not r.workload.startswith("ycsb-") for r in rows):
        parts.append(f"{config['size']:,} keys")
    if any(r.workload.startswith("ycsb-") for r in rows):
        parts.append(
            f"YCSB {config.get('records', '?'):,} records, {config.get('operations', '?'):,} ops, "
            f"{config.get('threads', 1)} thread{'s' if config.get('threads', 1) != 1 else ''}"
        )
    parts.append(f"{config['value_size']}-byte values")
    parts.append(f"median of {rounds} round{'s' if rounds != 1 else ''}")
    return parts[0] + ": " + ", ".join(parts[1:])


def render_document(
    document: dict[str, Any], out: Path, console: Any | None, quiet: bool = False
) -> list[Path]:
    """Write results.md, chart.svg (and latency.svg when there are latencies) for a
    results document; print its tables. Returns the paths written."""
    rows = [Row(**r) for r in document["results"]]
    info: dict[str, dict[str, Any]] = document["stores"]
    stores = [name for name, entry in info.items() if entry["available"]]
    baseline: str = document["baseline"]
    durability = {name: entry["durability"] for name, entry in info.items()}
    views = build_views(rows, stores, durability, baseline)
    views += build_latency_views(rows, stores)
    title = run_title(document["config"], rows)
    warning = noise_warning(rows)
    out.mkdir(parents=True, exist_ok=True)
    md, svg = out / "results.md", out / "chart.svg"
    text = to_markdown(views, document)
    md.write_text(text if warning is None else f"**{warning}**\n\n{text}")
    svg.write_text(render_svg(rows, stores, title, baseline))
    written = [md, svg]
    latency = render_latency_svg(rows, stores, title.replace("seglog bench", "latency"))
    if latency is not None:
        (out / "latency.svg").write_text(latency)
        written.append(out / "latency.svg")
    if not quiet:
        print_views(views, console)
        messages = [] if warning is None else [warning]
        for err in document["errors"]:
            messages.append(
                f"ERROR {err['store']} sync={err['sync']} round {err['round']} "
                f"{err['workload'] or ''}: {err['error']}"
            )
        for message in messages:
            if console is not None:
                console.print(message, highlight=False)
            else:
                print(message, file=sys.stderr)
    return written
