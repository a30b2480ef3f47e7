"""Dependency-free SVG charts of ``seglog bench`` results, for a README.

Three kinds: the throughput bars (:func:`render_svg`), the latency percentiles
of the YCSB workloads beside them (:func:`render_latency_svg`), and the lines of
a sweep (:func:`render_lines_svg`).

Small multiples: one panel per workload, one horizontal bar per store (its median)
with a whisker from the min to the max of the rounds, and the ratio to the
baseline beside the value. seglog's own bars are orange; peers whose durability is
not an exact match for the mode are drawn pale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from xml.sax.saxutils import escape

from benchmarks.report import fmt_ratio, fmt_us, fmt_value
from benchmarks.results import Row
from benchmarks.workloads import WORKLOADS

PANEL_WIDTH = 400
COLUMNS = 3
BAR = 14
GAP = 6
LABEL = 96
VALUE_SPACE = 92
HEADER = 40
TOP = 56
FONT = "font-family='Helvetica, Arial, sans-serif'"

SEGLOG = "#e8590c"
SEGLOG_OTHER = "#f59f00"
PEER = "#4263eb"
PEER_PALE = "#bac8ff"


def _color(row: Row, baseline: str) -> str:
    if row.store == baseline:
        return SEGLOG
    if row.store.startswith("seglog"):
        return SEGLOG_OTHER
    return PEER if row.level in ("match", "emulated", "") else PEER_PALE


def render_svg(rows: list[Row], stores: list[str], title: str, baseline: str) -> str:
    """An SVG document with a panel per workload that has at least one median."""
    panels: list[tuple[str, str, list[Row]]] = []
    for name, spec in WORKLOADS.items():
        for sync in dict.fromkeys(r.sync for r in rows):
            chosen = [r for r in rows if r.workload == name and r.sync == sync and r.median]
            if not chosen:
                continue
            chosen.sort(key=lambda r: stores.index(r.store) if r.store in stores else 99)
            better = "higher" if spec.higher_is_better else "lower"
            caption = f"{name} · {spec.unit}, {better} is better"
            if len({r.sync for r in rows}) > 1 or spec.group == "durable":
                caption += f' · sync="{sync}"'
            panels.append((name, caption, chosen))

    heights = [HEADER + len(p[2]) * (BAR + GAP) + 8 for p in panels]
    row_heights = [
        max(heights[i : i + COLUMNS], default=0) for i in range(0, len(heights), COLUMNS)
    ]
    width = PANEL_WIDTH * COLUMNS + 20
    height = TOP + sum(row_heights) + 30
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT}>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='10' y='24' font-size='16' font-weight='bold'>{escape(title)}</text>",
        "<text x='10' y='44' font-size='11' fill='#555'>bars: median of the rounds; "
        f"whiskers: min to max; ratios to {escape(baseline)}; pale: durability "
        "not matched; *: cut short by the time budget (see the table)</text>",
    ]
    y0 = TOP
    for start in range(0, len(panels), COLUMNS):
        row_panels = panels[start : start + COLUMNS]
        for col, (_name, caption, chosen) in enumerate(row_panels):
            out.extend(_panel(10 + col * PANEL_WIDTH, y0, caption, chosen, baseline))
        y0 += row_heights[start // COLUMNS]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _panel(x: int, y: int, caption: str, rows: list[Row], baseline: str) -> list[str]:
    scale_max = max((r.max or r.median or 0.0) for r in rows) or 1.0
    span = PANEL_WIDTH - LABEL - VALUE_SPACE - 16
    out = [f"<text x='{x}' y='{y + 16}' font-size='12' font-weight='bold'>{escape(caption)}</text>"]
    for i, r in enumerate(rows):
        top = y + HEADER - 14 + i * (BAR + GAP)
        median = r.median or 0.0
        bar = max(1.0, median / scale_max * span)
        mid = top + BAR / 2
        out.append(
            f"<text x='{x + LABEL - 6}' y='{mid + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{escape(r.store)}</text>"
        )
        out.append(
            f"<rect x='{x + LABEL}' y='{top}' width='{bar:.1f}' height='{BAR}' "
            f"fill='{_color(r, baseline)}'/>"
        )
        if r.min is not None and r.max is not None and r.max > r.min:
            lo = x + LABEL + r.min / scale_max * span
            hi = x + LABEL + r.max / scale_max * span
            out.append(
                f"<line x1='{lo:.1f}' y1='{mid:.1f}' x2='{hi:.1f}' y2='{mid:.1f}' "
                "stroke='#212529' stroke-width='1.2'/>"
            )
        label = fmt_value(r.median, r.unit) + ("*" if r.extra.get("partial") else "")
        if r.store != baseline and r.ratio is not None:
            label += f"  {fmt_ratio(r.ratio)}"
        end = x + LABEL + max(bar, (r.max or 0.0) / scale_max * span) + 4
        out.append(
            f"<text x='{end:.1f}' y='{mid + 4:.1f}' font-size='10' fill='#333'>"
            f"{escape(label)}</text>"
        )
    return out


# -- latency percentiles ------------------------------------------------------

#: Marker colours of the percentiles, lightest for the median.
PERCENTILE_COLORS = {"p50": "#74c0fc", "p95": "#4dabf7", "p99": "#1c7ed6", "p99.9": "#0b3d91"}


def render_latency_svg(rows: list[Row], stores: list[str], title: str) -> str | None:
    """Percentile dots (p50, p95, p99, p99.9) on a log scale, a panel per workload and
    operation type, a line per store; None when no row has latencies."""
    panels: list[tuple[str, list[tuple[str, dict[str, float]]]]] = []
    for name in WORKLOADS:
        for sync in dict.fromkeys(r.sync for r in rows):
            chosen = [r for r in rows if r.workload == name and r.sync == sync and r.latency]
            chosen.sort(key=lambda r: stores.index(r.store) if r.store in stores else 99)
            for op in dict.fromkeys(op for r in chosen for op in r.latency):
                lines = [(r.store, r.latency[op]) for r in chosen if "p50" in r.latency.get(op, {})]
                if lines:
                    panels.append((f'{name} · {op} latency · sync="{sync}"', lines))
    if not panels:
        return None
    heights = [HEADER + 14 + len(p[1]) * (BAR + GAP) + 8 for p in panels]
    row_heights = [max(heights[i : i + COLUMNS]) for i in range(0, len(heights), COLUMNS)]
    width = PANEL_WIDTH * COLUMNS + 20
    height = TOP + sum(row_heights) + 30
    legend = " ".join(
        f"<tspan fill='{color}'>● {name}</tspan>" for name, color in PERCENTILE_COLORS.items()
    )
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT}>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='10' y='24' font-size='16' font-weight='bold'>{escape(title)}</text>",
        f"<text x='10' y='44' font-size='11' fill='#555'>{legend} · log scale; every "
        "operation of every round (merged HdrHistograms); text: p50 and p99</text>",
    ]
    y0 = TOP
    for start in range(0, len(panels), COLUMNS):
        for col, (caption, lines) in enumerate(panels[start : start + COLUMNS]):
            out.extend(_latency_panel(10 + col * PANEL_WIDTH, y0, caption, lines))
        y0 += row_heights[start // COLUMNS]
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _latency_panel(
    x: int, y: int, caption: str, lines: list[tuple[str, dict[str, float]]]
) -> list[str]:
    values = [s[p] for _, s in lines for p in PERCENTILE_COLORS if s.get(p)]
    lo = 10 ** math.floor(math.log10(max(min(values), 1e-3)))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.01))
    span = PANEL_WIDTH - LABEL - VALUE_SPACE - 16
    decades = max(1.0, math.log10(hi / lo))

    def at(value: float) -> float:
        return x + LABEL + math.log10(max(value, lo) / lo) / decades * span

    out = [f"<text x='{x}' y='{y + 16}' font-size='12' font-weight='bold'>{escape(caption)}</text>"]
    axis_y = y + HEADER - 14 + len(lines) * (BAR + GAP) + 10
    tick = lo
    while tick <= hi * 1.0001:
        tx = at(tick)
        out.append(
            f"<line x1='{tx:.1f}' y1='{y + HEADER - 16}' x2='{tx:.1f}' y2='{axis_y - 8}' "
            "stroke='#dee2e6' stroke-width='1'/>"
        )
        out.append(
            f"<text x='{tx:.1f}' y='{axis_y + 2}' font-size='9' fill='#868e96' "
            f"text-anchor='middle'>{fmt_us(tick)}</text>"
        )
        tick *= 10
    for i, (store, summary) in enumerate(lines):
        mid = y + HEADER - 14 + i * (BAR + GAP) + BAR / 2
        out.append(
            f"<text x='{x + LABEL - 6}' y='{mid + 4:.1f}' font-size='11' "
            f"text-anchor='end'>{escape(store)}</text>"
        )
        first, last = at(summary["p50"]), at(summary.get("p99.9", summary["p50"]))
        out.append(
            f"<line x1='{first:.1f}' y1='{mid:.1f}' x2='{last:.1f}' y2='{mid:.1f}' "
            "stroke='#adb5bd' stroke-width='2'/>"
        )
        for name, color in PERCENTILE_COLORS.items():
            if summary.get(name):
                out.append(
                    f"<circle cx='{at(summary[name]):.1f}' cy='{mid:.1f}' r='4' fill='{color}'/>"
                )
        text = f"{fmt_us(summary['p50'])} · {fmt_us(summary.get('p99', summary['p50']))}"
        out.append(
            f"<text x='{x + LABEL + span + 8}' y='{mid + 4:.1f}' font-size='10' "
            f"fill='#333'>{escape(text)}</text>"
        )
    return out


# -- sweeps ---------------------------------------------------------------------

LINE_COLORS = (
    "#e8590c",
    "#4263eb",
    "#2f9e44",
    "#ae3ec9",
    "#f08c00",
    "#1098ad",
    "#c92a2a",
    "#495057",
)


@dataclass(frozen=True)
class LinePanel:
    """One workload across a swept axis: an x value list and a line per store."""

    caption: str
    x_label: str
    xs: list[float]
    series: dict[str, list[float | None]]


def render_lines_svg(panels: list[LinePanel], title: str) -> str:
    """Small multiples of line charts; x on a log2 scale (sizes and thread counts double)."""
    panel_h = 200
    width = PANEL_WIDTH * COLUMNS + 20
    rows = max(1, (len(panels) + COLUMNS - 1) // COLUMNS)
    height = TOP + rows * panel_h + 20
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"viewBox='0 0 {width} {height}' {FONT}>",
        f"<rect width='{width}' height='{height}' fill='white'/>",
        f"<text x='10' y='24' font-size='16' font-weight='bold'>{escape(title)}</text>",
        "<text x='10' y='44' font-size='11' fill='#555'>medians of the rounds at each point; "
        "x on a log scale</text>",
    ]
    for i, panel in enumerate(panels):
        x = 10 + (i % COLUMNS) * PANEL_WIDTH
        y = TOP + (i // COLUMNS) * panel_h
        out.extend(_line_panel(x, y, panel, panel_h))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _line_panel(x: int, y: int, panel: LinePanel, panel_h: int) -> list[str]:
    left, right, top, bottom = x + 44, x + PANEL_WIDTH - 90, y + 26, y + panel_h - 34
    top_value = max((v for s in panel.series.values() for v in s if v), default=1.0) * 1.1
    logs = [math.log2(v) for v in panel.xs]
    lo, hi = min(logs), max(logs)

    def px(value: float) -> float:
        return left + (math.log2(value) - lo) / ((hi - lo) or 1) * (right - left)

    def py(value: float) -> float:
        return bottom - value / top_value * (bottom - top)

    caption = escape(panel.caption)
    out = [
        f"<text x='{x}' y='{y + 14}' font-size='12' font-weight='bold'>{caption}</text>",
        f"<line x1='{left}' y1='{bottom}' x2='{right}' y2='{bottom}' stroke='#868e96'/>",
        f"<line x1='{left}' y1='{top}' x2='{left}' y2='{bottom}' stroke='#868e96'/>",
        f"<text x='{left - 4}' y='{top + 4}' font-size='9' text-anchor='end'>"
        f"{escape(fmt_value(top_value, 'ops/s'))}</text>",
        f"<text x='{(left + right) / 2:.0f}' y='{bottom + 26}' font-size='10' "
        f"text-anchor='middle' fill='#555'>{escape(panel.x_label)}</text>",
    ]
    for value in panel.xs:
        out.append(
            f"<text x='{px(value):.1f}' y='{bottom + 12}' font-size='9' "
            f"text-anchor='middle'>{value:g}</text>"
        )
    for n, (store, values) in enumerate(panel.series.items()):
        color = LINE_COLORS[n % len(LINE_COLORS)]
        points = [(px(xv), py(v)) for xv, v in zip(panel.xs, values, strict=True) if v]
        if not points:
            continue
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
        out.append(f"<polyline points='{path}' fill='none' stroke='{color}' stroke-width='2'/>")
        out.extend(f"<circle cx='{a:.1f}' cy='{b:.1f}' r='3' fill='{color}'/>" for a, b in points)
        out.append(
            f"<text x='{right + 6}' y='{top + 10 + n * 13}' font-size='10' "
            f"fill='{color}'>{escape(store)}</text>"
        )
    return out
