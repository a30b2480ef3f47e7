"""``seglog bench compare`` on recorded results with a planted regression, and sweeps."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from benchmarks.compare_runs import compare_documents
from benchmarks.latency import encode, record_all
from benchmarks.results import Collector, row_dicts
from seglog_cli.main import main

ROUNDS = 5


def _document(scale: dict[str, float], latency_scale: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """A results document as a run records it: five rounds of samples with ±3% noise
    per (store, workload), and a latency histogram per round for ycsb-a; ``scale``
    multiplies a workload's values (a planted change)."""
    rng = random.Random(seed)
    collector = Collector()
    bases = {"fill-random": 200_000.0, "read-random": 300_000.0, "reopen": 40.0, "ycsb-a": 50_000.0}
    for store in ("seglog", "sqlite"):
        for workload, base in bases.items():
            for _ in range(ROUNDS):
                value = base * scale.get(workload, 1.0) * rng.uniform(0.97, 1.03)
                extra: dict[str, Any] = {}
                if workload == "ycsb-a":
                    reads = [int(rng.gauss(5000, 500) * latency_scale) for _ in range(2000)]
                    extra["latency"] = {"read": encode(record_all(reads))}
                collector.add_result(store, "periodic", workload, value, extra)
    rows = collector.rows({}, "seglog")
    return {"started": "t", "machine": {"cpu": "x"}, "results": row_dicts(rows)}


def _write(path: Path, document: dict[str, Any]) -> str:
    path.write_text(json.dumps(document))
    return str(path)


def test_planted_regression_fails_and_noise_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = _write(tmp_path / "old.json", _document({}, seed=1))
    same = _write(tmp_path / "same.json", _document({}, seed=2))
    slower = _write(tmp_path / "slower.json", _document({"fill-random": 0.7}, seed=3))
    assert main(["bench", "compare", old, same]) == 0
    assert "no regression beyond 10%" in capsys.readouterr().out
    assert main(["bench", "compare", old, slower, "--threshold", "0.1"]) == 1
    out = capsys.readouterr().out
    flagged = [line for line in out.splitlines() if "REGRESSED" in line]
    assert len(flagged) == 2 and all("fill-random" in line for line in flagged)
    # A 30% drop is within a 40% threshold.
    assert main(["bench", "compare", old, slower, "--threshold", "0.4"]) == 0


def test_lower_is_better_units_and_latency_regress_the_right_way() -> None:
    old = _document({}, seed=1)
    worse = compare_documents(old, _document({"reopen": 1.5}, latency_scale=2.0, seed=2), 0.1)
    verdicts = {c.label: c.verdict for c in worse}
    assert verdicts["seglog reopen sync=periodic (ms)"] == "REGRESSED"
    assert verdicts["seglog ycsb-a sync=periodic read p99 (µs)"] == "REGRESSED"
    assert verdicts["seglog ycsb-a sync=periodic (ops/s)"] == ""
    better = compare_documents(old, _document({"reopen": 0.5}, seed=2), 0.1)
    reopen = next(c for c in better if c.label == "sqlite reopen sync=periodic (ms)")
    assert reopen.verdict == "improved" and reopen.better == pytest.approx(2.0, rel=0.1)
    assert reopen.low <= reopen.better <= reopen.high


def test_compare_refuses_bad_input(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.json", _document({}))
    (tmp_path / "junk.json").write_text("{not json")
    assert main(["bench", "compare", good, str(tmp_path / "junk.json")]) == 2
    assert main(["bench", "compare", good, str(tmp_path / "missing.json")]) == 2
    assert main(["bench", "compare", good]) == 2
    assert main(["bench", "compare", good, good, "--threshold", "1.5"]) == 2
    assert main(["bench", "frobnicate", good, good]) == 2


def test_sweep_of_value_sizes_draws_lines(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    args = ["--stores", "seglog,sqlite", "--workloads", "ycsb-c", "--rounds", "1"]
    args += ["--records", "200", "--operations", "300", "--value-size", "16,4096"]
    assert main(["bench", *args, "--out", str(out), "--no-progress"]) == 0
    sweep = json.loads((out / "sweep.json").read_text())
    assert [p["value_size"] for p in sweep["points"]] == [16, 4096]
    for point in sweep["points"]:
        assert Path(point["results_json"]).exists()
        stores = {r["store"] for r in point["rows"] if r["median"] > 0 and r["p99"]["read"] > 0}
        assert stores == {"seglog", "sqlite"}
    root = ET.parse(out / "sweep.svg").getroot()
    lines = [e for e in root.iter() if e.tag.endswith("polyline")]
    assert len(lines) == 2
