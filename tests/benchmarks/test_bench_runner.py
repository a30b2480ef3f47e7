"""Tiny end-to-end runs of ``seglog bench``: they finish and write valid output.

Never asserts a timing: only that every number is there, finite and positive.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from benchmarks.task_spec import TaskSpec
from benchmarks.worker import Task
from seglog_cli.main import build_parser, command_modules, main

TINY = ["--size", "300", "--rounds", "1", "--durable-ops", "40", "--durable-seconds", "0.05"]


def _run(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "out"
    code = main(["bench", *TINY, "--out", str(out), "--no-progress", *args])
    document = json.loads((out / "results.json").read_text())
    return code, document


def test_cli_discovers_bench() -> None:
    assert "seglog_cli.commands.bench" in command_modules()
    args = build_parser().parse_args(["bench", "--quick"])
    assert args.command == "bench" and args.quick


def test_list_stores(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--list", "--stores", "sqlite,dbm"]) == 0
    out = capsys.readouterr().out
    assert "sqlite:" in out and "synchronous=FULL" in out and "cannot offer it" in out


def test_bad_arguments_exit_2(tmp_path: Path) -> None:
    assert main(["bench", "--workloads", "nope", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--sync", "sometimes", "--out", str(tmp_path)]) == 2
    assert main(["bench", "--stores", "oracle", "--out", str(tmp_path)]) == 2


def test_tiny_run_of_two_stores(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--out", str(out), "--no-progress", "--json", str(tmp_path / "r.json")]
    code = main(["bench", *TINY, "--stores", "seglog,sqlite", *args])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert code == 0, doc["errors"]
    assert doc["errors"] == []
    assert doc["baseline"] == "seglog"
    assert doc["config"]["size"] == 300
    assert {(t["store"], t["group"]) for t in doc["tasks"]} == {
        (s, g) for s in ("seglog", "sqlite") for g in ("main", "durable")
    }
    results = {(r["store"], r["sync"], r["workload"]): r for r in doc["results"]}
    for store in ("seglog", "sqlite"):
        for workload in ("fill-seq", "fill-random", "overwrite", "read-random", "prefix-scan"):
            row = results[store, "periodic", workload]
            assert math.isfinite(row["median"]) and row["median"] > 0
            assert row["unit"] in ("ops/s", "keys/s")
        for workload in ("durable-1t", "durable-4t", "durable-8t", "durable-16t"):
            assert results[store, "always", workload]["median"] > 0
    assert results["seglog", "periodic", "fill-random"]["ratio"] == 1.0
    assert results["sqlite", "periodic", "fill-random"]["ratio"] > 0
    assert results["sqlite", "periodic", "index-memory"]["median"] is None
    assert results["seglog", "periodic", "index-memory"]["median"] > 0
    assert doc["stores"]["sqlite"]["durability"]["always"]["level"] == "match"
    ET.parse(tmp_path / "out" / "chart.svg")
    assert '### sync="periodic"' in (tmp_path / "out" / "results.md").read_text()
    assert not list((tmp_path / "out").glob(".data/*")), "store files left behind"

    again = tmp_path / "again"
    assert main(["bench", "--render", str(tmp_path / "r.json"), "--out", str(again)]) == 0
    assert (again / "results.md").read_text() == (out / "results.md").read_text()
    assert (again / "chart.svg").read_text() == (out / "chart.svg").read_text()


def test_unsupported_mode_is_marked_not_run(tmp_path: Path) -> None:
    code, doc = _run(tmp_path, "--stores", "dbm", "--sync", "always", "--workloads", "reopen")
    assert code == 0
    (row,) = doc["results"]
    assert row["median"] is None and "cannot offer" in row["note"]
    assert row["level"] == "unsupported"


def test_worker_in_process_reports_every_workload(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    spec = TaskSpec(
        store="seglog-store",
        sync="none",
        group="main",
        workloads=["fill-random", "read-random", "delete", "reopen", "prefix-scan"],
        directory=str(tmp_path),
        size=200,
    )
    Task(TaskSpec.from_json(spec.to_json()), events.append).run()
    done = {e["workload"] for e in events if e["event"] == "result"}
    assert done == set(spec.workloads)


def test_worker_budget_cuts_a_slow_store_short(tmp_path: Path) -> None:
    events: list[dict[str, Any]] = []
    spec = TaskSpec(
        store="dbm",
        sync="none",
        group="main",
        workloads=["delete"],
        directory=str(tmp_path),
        size=2000,
        budget_seconds=0.0,
    )
    Task(spec, events.append).run()
    (result,) = [e for e in events if e["event"] == "result"]
    assert "partial" in result["extra"]


@pytest.mark.parametrize("workloads", [["fill-seq"], ["reopen"], ["overwrite", "delete"]])
def test_worker_reports_only_what_was_asked(tmp_path: Path, workloads: list[str]) -> None:
    events: list[dict[str, Any]] = []
    spec = TaskSpec(
        store="sqlite",
        sync="periodic",
        group="main",
        workloads=workloads,
        directory=str(tmp_path),
        size=100,
    )
    Task(spec, events.append).run()
    assert [e["workload"] for e in events if e["event"] == "result"] == workloads
    assert {e["workload"] for e in events if e["event"] == "start"} == set(workloads)


def test_postgres_flag_runs_postgres_store_on_that_server(
    tmp_path: Path, postgres_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import psycopg

    from benchmarks.adapters.postgres_store import DSN_VARIABLE

    monkeypatch.delenv(DSN_VARIABLE, raising=False)  # restored after the test

    def bench_schemas() -> int:
        with psycopg.connect(postgres_dsn) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'bench\\_%'"
            ).fetchone()
        assert row is not None
        return int(row[0])

    before = bench_schemas()
    workloads = "fill-seq,fill-random,disk-size"
    args = ("--stores", "postgres-store", "--workloads", workloads, "--postgres", postgres_dsn)
    code, doc = _run(tmp_path, *args)
    assert code == 0, doc["errors"]
    (row,) = [r for r in doc["results"] if r["workload"] == "fill-seq"]
    assert row["store"] == "postgres-store" and row["median"] > 0
    # Its data is in the server: no size is measured rather than 0 bytes a key.
    (size,) = [r for r in doc["results"] if r["workload"] == "disk-size"]
    assert size["median"] is None and "server" in size["note"]
    assert bench_schemas() > before, "the run did not use the server --postgres named"
