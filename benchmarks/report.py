"""Tables of results: one view, rendered for the terminal (rich) and as Markdown.

A table per sync mode: a row per workload, a column per store, each cell
``median ±half-spread% ratio``. Column headers carry the store's durability level
when it is not an exact match, and notes under the table say why cells are empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from benchmarks.adapters.base import MODE_PROMISE, SyncMode
from benchmarks.results import Row
from benchmarks.workloads import WORKLOADS


def fmt_value(value: float | None, unit: str) -> str:
    """A median in its unit, short: ``412k``, ``1.04M``, ``38 ms``, ``152 B``."""
    if value is None:
        return "—"
    if unit in ("ops/s", "keys/s"):
        if value >= 1e6:
            return f"{value / 1e6:.2f}M"
        if value >= 1e4:
            return f"{value / 1e3:.0f}k"
        if value >= 1e3:
            return f"{value / 1e3:.1f}k"
        return f"{value:.0f}"
    if unit == "ms":
        if value >= 1000:
            return f"{value / 1000:.2f} s"
        if value >= 10:
            return f"{value:.0f} ms"
        return f"{value:.2f} ms"
    if unit == "B/key":
        return f"{value:.0f} B"
    return f"{value:.3g}"


def fmt_us(value: float) -> str:
    """Microseconds, short: ``850ns``, ``12µs``, ``3.4ms``, ``1.2s``."""
    if value < 1:
        return f"{value * 1000:.0f}ns"
    if value < 1000:
        return f"{value:.3g}µs"
    if value < 1_000_000:
        return f"{value / 1000:.3g}ms"
    return f"{value / 1e6:.3g}s"


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return ""
    if ratio >= 10:
        return f"{ratio:.0f}x"
    if ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.2g}x"


def fmt_spread(spread: float | None) -> str:
    if spread is None:
        return ""
    return f"±{spread * 50:.0f}%"


@dataclass
class TableView:
    """A renderer-neutral table."""

    title: str
    caption: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def _cell(row: Row | None) -> str:
    if row is None:
        return "—"
    if row.median is None:
        return "n/a"
    first = fmt_value(row.median, row.unit)
    if row.extra.get("partial"):
        first += "*"
    second = " ".join(s for s in (fmt_spread(row.spread), fmt_ratio(row.ratio)) if s)
    lines = [first, second] if second else [first]
    fsyncs = row.extra.get("fsyncs_per_write")
    if isinstance(fsyncs, int | float):
        lines.append(f"{fsyncs:.2f} fsync/w")
    return "\n".join(lines)


def build_views(
    rows: list[Row],
    stores: list[str],
    durability: dict[str, dict[str, dict[str, str] | None]],
    baseline: str,
) -> list[TableView]:
    """One view per (sync mode, group) present in ``rows``, stores in ``stores`` order."""
    by_key = {(r.store, r.sync, r.workload): r for r in rows}
    views = []
    groups: list[tuple[str, str]] = []
    for r in rows:
        if (r.sync, WORKLOADS[r.workload].group) not in groups:
            groups.append((r.sync, WORKLOADS[r.workload].group))
    order = {"main": 0, "ycsb": 1, "durable": 2}
    for sync, group in sorted(groups, key=lambda g: (order[g[1]], g[0])):
        names = [w for w in WORKLOADS if WORKLOADS[w].group == group]
        names = [w for w in names if any(r.workload == w and r.sync == sync for r in rows)]
        present = [s for s in stores if any(r.store == s and r.sync == sync for r in rows)]
        headers = ["workload"]
        notes: list[str] = []
        for store in present:
            info = durability.get(store, {}).get(sync)
            level = info["level"] if info else "unsupported"
            headers.append(store if level == "match" else f"{store}\n({level})")
            if info and level != "match":
                notes.append(f"{store}: {level}: {info['how']}")
        table_rows = []
        for name in names:
            spec = WORKLOADS[name]
            label = f"{name}\n{spec.unit} {'↑' if spec.higher_is_better else '↓'}"
            cells = [_cell(by_key.get((store, sync, name))) for store in present]
            table_rows.append([label, *cells])
        for store in present:
            reasons: dict[str, list[str]] = {}
            for name in names:
                found = by_key.get((store, sync, name))
                if found is not None and found.median is None and found.note:
                    reasons.setdefault(found.note, []).append(name)
                elif found is not None and found.extra.get("partial"):
                    notes.append(f"{store} {name}*: {found.extra['partial']}")
            for reason, workloads in reasons.items():
                notes.append(f"{store} {', '.join(workloads)}: n/a, {reason}")
        if group == "durable":
            title = 'Durable writes (sync="always": each write fsynced before it returns)'
        elif group == "ycsb":
            title = f'YCSB core workloads, sync="{sync}"'
        else:
            title = f'sync="{sync}"'
        caption = (
            f"A write is {MODE_PROMISE[sync_mode(sync)]}. "
            f"Cells: median, ±half the min-max spread, ratio to {baseline}; "
            "↑ higher is better, ↓ lower is better."
        )
        views.append(TableView(title, caption, headers, table_rows, notes))
    return views


def build_latency_views(rows: list[Row], stores: list[str]) -> list[TableView]:
    """One view per sync mode with latencies: a row per (workload, operation type),
    a column per store, each cell p50 / p99 / p99.9 / max."""
    views = []
    for sync in dict.fromkeys(r.sync for r in rows if r.latency):
        by_key = {(r.store, r.workload): r for r in rows if r.sync == sync and r.latency}
        present = [s for s in stores if any(k[0] == s for k in by_key)]
        table_rows = []
        for name in WORKLOADS:
            ops = dict.fromkeys(op for (_, w), r in by_key.items() if w == name for op in r.latency)
            for op in ops:
                cells = []
                for store in present:
                    found = by_key.get((store, name))
                    summary = found.latency.get(op, {}) if found else {}
                    cells.append(_latency_cell(summary))
                table_rows.append([f"{name}\n{op}", *cells])
        caption = (
            "Cells: p50, p99, p99.9 and max latency of every operation of every round "
            "(merged HdrHistograms); with --target-rate, measured from each operation's "
            "intended start."
        )
        views.append(
            TableView(f'YCSB latency, sync="{sync}"', caption, ["workload", *present], table_rows)
        )
    return views


def _latency_cell(summary: dict[str, float]) -> str:
    if "p50" not in summary:
        return "—"
    return "\n".join(
        [
            f"p50 {fmt_us(summary['p50'])}",
            f"p99 {fmt_us(summary['p99'])}",
            f"p99.9 {fmt_us(summary['p99.9'])}",
            f"max {fmt_us(summary['max'])}",
        ]
    )


#: Median min-max spread (fraction of the median) above which a run is called noisy.
NOISY_SPREAD = 0.25


def noise_warning(rows: list[Row]) -> str | None:
    """A warning when the rounds disagree so much that the machine was evidently busy."""
    spreads = sorted(r.spread for r in rows if r.spread is not None and len(r.samples) > 1)
    if not spreads:
        return None
    typical = spreads[len(spreads) // 2]
    if typical <= NOISY_SPREAD:
        return None
    return (
        f"warning: the rounds of a typical cell differ by {typical:.0%} of its median: the "
        "machine was noisy. Compare ratios within this run, and re-run before quoting a "
        "close call."
    )


def sync_mode(name: str) -> SyncMode:
    if name == "always":
        return "always"
    if name == "none":
        return "none"
    return "periodic"


def to_markdown(views: list[TableView], meta: dict[str, Any] | None = None) -> str:
    """The tables as GitHub Markdown (line breaks inside cells become ``<br>``)."""
    out: list[str] = []
    if meta:
        out.append(f"Command: `{meta.get('command', '')}`  ")
        machine = meta.get("machine", {})
        out.append(
            f"Machine: {machine.get('cpu', '?')}, {machine.get('cpus', '?')} cores, "
            f"{machine.get('memory', '?')}, {machine.get('filesystem', '?')}, "
            f"Linux {machine.get('kernel', '?')}, Python {machine.get('python', '?')}"
        )
        overhead = machine.get("harness_overhead")
        if overhead:
            out[-1] += "  "
            out.append(
                f"Harness overhead: {overhead['ns_per_op'] / 1000:.1f} µs per YCSB operation "
                f"on a store that does nothing (of which {overhead['timed_call_p50_ns']:.0f} ns "
                "inside the timed call, median)"
            )
        out.append("")
    for view in views:
        out.append(f"### {view.title}")
        out.append("")
        out.append(view.caption)
        out.append("")
        out.append("| " + " | ".join(h.replace("\n", " ") for h in view.headers) + " |")
        out.append("|" + "|".join([" --- "] + [" ---: "] * (len(view.headers) - 1)) + "|")
        for row in view.rows:
            out.append("| " + " | ".join(c.replace("\n", "<br>") for c in row) + " |")
        if view.notes:
            out.append("")
            out.extend(f"- {note}" for note in view.notes)
        out.append("")
    return "\n".join(out)


def split_columns(view: TableView, width: int) -> list[TableView]:
    """Split a view into several with the same rows and at most as many store
    columns as fit in ``width`` characters; the baseline (first store) is kept in
    every part so each one still reads as a comparison."""

    def cell_width(i: int) -> int:
        texts = [view.headers[i], *(row[i] for row in view.rows)]
        return max(len(line) for t in texts for line in t.split("\n")) + 3

    label = cell_width(0) + 1
    widths = [cell_width(i) for i in range(1, len(view.headers))]
    if label + sum(widths) <= width or len(widths) <= 2:
        return [view]
    parts: list[list[int]] = [[1]]
    used = label + widths[0]
    for i in range(2, len(view.headers)):
        if used + widths[i - 1] > width and len(parts[-1]) > 1:
            parts.append([1])
            used = label + widths[0]
        parts[-1].append(i)
        used += widths[i - 1]
    views = []
    for part in parts:
        columns = [0, *part]
        views.append(
            TableView(
                view.title,
                "",
                [view.headers[i] for i in columns],
                [[row[i] for i in columns] for row in view.rows],
                [],
            )
        )
    views[-1].caption = view.caption
    views[-1].notes = view.notes
    return views


def print_views(views: list[TableView], console: Any | None = None) -> None:
    """Print the tables with rich, each split to the terminal's width."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    for whole in views:
        for view in split_columns(whole, console.width):
            table = Table(title=view.title, caption=view.caption or None, show_lines=True)
            for i, header in enumerate(view.headers):
                table.add_column(header, justify="left" if i == 0 else "right", no_wrap=True)
            for row in view.rows:
                table.add_row(*row)
            console.print(table)
        for note in whole.notes:
            console.print(f"  [dim]{note}[/dim]", highlight=False)
        console.print()
