"""A dependency-free SVG bar chart of ``seglog bench`` results, for a README.

Small multiples: one panel per workload, one horizontal bar per store (its median)
with a whisker from the min to the max of the rounds, and the ratio to the
baseline beside the value. seglog's own bars are orange; peers whose durability is
not an exact match for the mode are drawn pale.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from benchmarks.report import fmt_ratio, fmt_value
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
