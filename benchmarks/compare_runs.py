"""``seglog bench compare OLD.json NEW.json``: did anything get slower?

For every (store, sync mode, workload) measured in both runs, the ratio of the
medians of the rounds, NEW over OLD, with a bootstrap confidence interval: each
side's rounds are resampled with replacement, the ratio of the resampled medians
is taken, 2000 times, and the 2.5th and 97.5th percentiles bound the 95%
interval. YCSB workloads are compared on each operation type's p99 latency too
(from each round's histogram).

Ratios are turned into "how much better" (above 1 is better, whatever the unit),
so the verdict reads the same for ops/s and for ms. A row **regressed** when it
is worse by more than the threshold *and* its whole interval lies on the worse
side of 1, so one noisy round cannot fail a CI job but a steady slowdown does;
``improved`` is the mirror image.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Comparison:
    label: str
    old: float
    new: float
    better: float
    """NEW relative to OLD, >1 meaning better (the ratio, inverted for ↓ units)."""
    low: float
    high: float
    verdict: str


def bootstrap_interval(
    old: list[float], new: list[float], rng: random.Random
) -> tuple[float, float]:
    """The 95% bootstrap interval of median(new) / median(old)."""
    ratios = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        a = statistics.median(rng.choices(old, k=len(old)))
        b = statistics.median(rng.choices(new, k=len(new)))
        if a > 0:
            ratios.append(b / a)
    if not ratios:
        return float("nan"), float("nan")
    ratios.sort()
    tail = (1 - CONFIDENCE) / 2
    lo = ratios[int(tail * (len(ratios) - 1))]
    hi = ratios[int((1 - tail) * (len(ratios) - 1))]
    return lo, hi


def compare_samples(
    label: str,
    old: list[float],
    new: list[float],
    higher_is_better: bool,
    threshold: float,
    rng: random.Random,
) -> Comparison | None:
    old = [v for v in old if v > 0]
    new = [v for v in new if v > 0]
    if not old or not new:
        return None
    m_old, m_new = statistics.median(old), statistics.median(new)
    lo, hi = bootstrap_interval(old, new, rng)
    better, low, high = m_new / m_old, lo, hi
    if not higher_is_better:
        better, low, high = 1 / better, 1 / hi, 1 / lo
    verdict = ""
    if better < 1 - threshold and high < 1:
        verdict = "REGRESSED"
    elif better > 1 + threshold and low > 1:
        verdict = "improved"
    return Comparison(label, m_old, m_new, better, low, high, verdict)


def _p99s(encoded: list[str]) -> list[float]:
    from benchmarks.latency import merge, summarize

    return [summarize(merge([e])).get("p99", 0.0) for e in encoded]


def compare_documents(
    old: dict[str, Any], new: dict[str, Any], threshold: float
) -> list[Comparison]:
    """Every row measured in both documents, in NEW's order."""
    rng = random.Random(0)
    before = {(r["store"], r["sync"], r["workload"]): r for r in old["results"]}
    found: list[Comparison] = []
    for row in new["results"]:
        key = (row["store"], row["sync"], row["workload"])
        prior = before.get(key)
        if prior is None:
            continue
        label = f"{row['store']} {row['workload']} sync={row['sync']}"
        found_row = compare_samples(
            f"{label} ({row['unit']})",
            prior["samples"],
            row["samples"],
            row["higher_is_better"],
            threshold,
            rng,
        )
        if found_row is not None:
            found.append(found_row)
        old_hist, new_hist = prior.get("histograms", {}), row.get("histograms", {})
        for op in [op for op in new_hist if op in old_hist]:
            latency = compare_samples(
                f"{label} {op} p99 (µs)",
                _p99s(old_hist[op]),
                _p99s(new_hist[op]),
                False,
                threshold,
                rng,
            )
            if latency is not None:
                found.append(latency)
    return found


def _load(path: str) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read {path}: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise ValueError(f"{path} is not a seglog bench results.json")
    return document


def compare_files(old_path: str, new_path: str, threshold: float) -> tuple[list[str], bool]:
    """The report's lines, and whether anything regressed."""
    if not 0 <= threshold < 1:
        raise ValueError(f"--threshold must be a fraction in [0, 1), not {threshold}")
    old, new = _load(old_path), _load(new_path)
    rows = compare_documents(old, new, threshold)
    if not rows:
        raise ValueError(f"{old_path} and {new_path} have no workload in common")
    width = max(len(r.label) for r in rows)
    lines = [
        f"OLD {old_path} ({old.get('started', '?')}), NEW {new_path} ({new.get('started', '?')})",
        f"better = NEW vs OLD, >1 is better for every unit; 95% bootstrap interval over "
        f"rounds; threshold {threshold:.0%}",
        "",
        f"{'':{width}}  {'old':>10} {'new':>10} {'better':>7}  interval",
    ]
    for r in rows:
        lines.append(
            f"{r.label:{width}}  {r.old:10.4g} {r.new:10.4g} {r.better:6.2f}x"
            f"  [{r.low:.2f}, {r.high:.2f}]  {r.verdict}"
        )
    regressed = [r for r in rows if r.verdict == "REGRESSED"]
    lines.append("")
    if regressed:
        lines.append(f"{len(regressed)} regressed by more than {threshold:.0%}")
    else:
        lines.append(f"no regression beyond {threshold:.0%}")
    facts = ("cpu", "cpus", "kernel", "python", "filesystem")
    old_machine, new_machine = old.get("machine", {}), new.get("machine", {})
    differ = [f for f in facts if old_machine.get(f) != new_machine.get(f)]
    if differ:
        lines.append(f"note: the runs' machines differ in {', '.join(differ)}")
    return lines, bool(regressed)
