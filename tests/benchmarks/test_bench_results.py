"""The arithmetic and formatting of results: medians, spreads, ratios, tables, chart."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from benchmarks.report import (
    TableView,
    build_views,
    fmt_ratio,
    fmt_value,
    split_columns,
    to_markdown,
)
from benchmarks.results import Collector
from benchmarks.svgchart import render_svg
from benchmarks.workloads import resolve_workloads


def _collector() -> Collector:
    c = Collector()
    for v in (100.0, 120.0, 110.0):
        c.add_result("seglog", "periodic", "fill-random", v, {})
    for v in (200.0, 220.0, 240.0):
        c.add_result("plyvel", "periodic", "fill-random", v, {"partial": "1 of 2"})
    c.add_result("seglog", "periodic", "reopen", 10.0, {"per_key_us": 1.0})
    c.add_skip("plyvel", "periodic", "index-memory", "not Python")
    return c


def test_median_spread_and_ratio() -> None:
    rows = {(r.store, r.workload): r for r in _collector().rows({}, "seglog")}
    seglog = rows["seglog", "fill-random"]
    plyvel = rows["plyvel", "fill-random"]
    assert seglog.median == 110.0 and seglog.ratio == 1.0
    assert seglog.spread == pytest.approx(20.0 / 110.0)
    assert plyvel.median == 220.0 and plyvel.ratio == pytest.approx(2.0)
    assert (plyvel.min, plyvel.max) == (200.0, 240.0)
    assert rows["plyvel", "index-memory"].median is None
    assert rows["plyvel", "index-memory"].note == "not Python"
    assert rows["seglog", "reopen"].extra == {"per_key_us": 1.0}


def test_no_baseline_means_no_ratio() -> None:
    rows = _collector().rows({}, "lmdb")
    assert all(r.ratio is None for r in rows)


def test_views_markdown_and_svg() -> None:
    rows = _collector().rows({("plyvel", "periodic"): "stronger"}, "seglog")
    durability = {"plyvel": {"periodic": {"level": "stronger", "how": "because"}}}
    views = build_views(rows, ["seglog", "plyvel"], durability, "seglog")  # type: ignore[arg-type]
    assert len(views) == 1
    md = to_markdown(views)
    assert "| fill-random<br>ops/s ↑ | 110<br>±9% 1.00x | 220*<br>±9% 2.00x |" in md
    assert "plyvel: stronger: because" in md
    assert "plyvel index-memory: n/a, not Python" in md
    svg = render_svg(rows, ["seglog", "plyvel"], "t <&> title", "seglog")
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")


def test_split_columns_keeps_baseline_in_every_part() -> None:
    view = TableView(
        "t", "c", ["workload", "seglog", "a", "b", "c"], [["w", "1", "2", "3", "4"]], ["n"]
    )
    parts = split_columns(view, 30)
    assert len(parts) > 1
    assert all(p.headers[:2] == ["workload", "seglog"] for p in parts)
    assert sorted(h for p in parts for h in p.headers[2:]) == ["a", "b", "c"]
    assert parts[-1].notes == ["n"] and parts[-1].caption == "c"
    assert split_columns(view, 200) == [view]


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (412_345.0, "ops/s", "412k"),
        (1_040_000.0, "ops/s", "1.04M"),
        (5_300.0, "keys/s", "5.3k"),
        (999.0, "ops/s", "999"),
        (38.2, "ms", "38 ms"),
        (1.234, "ms", "1.23 ms"),
        (2_500.0, "ms", "2.50 s"),
        (151.6, "B/key", "152 B"),
        (None, "ops/s", "—"),
    ],
)
def test_fmt_value(value: float | None, unit: str, text: str) -> None:
    assert fmt_value(value, unit) == text


@pytest.mark.parametrize(
    ("ratio", "text"), [(1.0, "1.00x"), (13.4, "13x"), (0.042, "0.042x"), (0.00042, "0.00042x")]
)
def test_fmt_ratio(ratio: float, text: str) -> None:
    assert fmt_ratio(ratio) == text


def test_resolve_workloads() -> None:
    assert resolve_workloads("reads,fill-seq") == ["fill-seq", "read-random", "prefix-scan"]
    assert resolve_workloads("durable")[-1] == "durable-16t"
    assert len(resolve_workloads("all")) == 19
    assert len(resolve_workloads("classic")) == 13
    assert resolve_workloads("ycsb") == [f"ycsb-{c}" for c in "abcdef"]
    with pytest.raises(ValueError, match="unknown workload"):
        resolve_workloads("fill-sideways")
