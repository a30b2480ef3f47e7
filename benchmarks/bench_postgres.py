"""What ``PostgresStore`` costs on top of raw psycopg, and LogStore beside it.

Run from the repository root (starts a throwaway PostgreSQL server on loopback,
or uses ``--dsn``)::

    .venv/bin/python benchmarks/bench_postgres.py            # 1M-row table for EXPLAIN
    .venv/bin/python benchmarks/bench_postgres.py --quick    # 100k rows, fewer ops

Part 1, point operations and a 100-key prefix list (100-byte values), each
run through ``PostgresStore`` and through one raw psycopg connection running
the very same SQL statements with the same parameters, taking turns in chunks
so that machine noise hits both alike. Each figure is the best of ``--rounds``
passes, as wall and CPU time per operation, with the ratio (goal: at most
1.3x). The same workloads on ``LogStore`` (``sync="always"``, the nearest to
PostgreSQL's flushed commits, and the default ``"periodic"``) go beside them.

Part 2: a table of ``--rows`` rows (bulk-loaded server-side), the ``EXPLAIN
(ANALYZE, BUFFERS)`` of a prefix ``list`` matching 100 keys and of a suffix
``list``: each must be one index range scan.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import psycopg

from store_api import LogStore, PostgresStore, Record, Store
from store_api.postgres import schema
from store_api.postgres.server import TemporaryServer

VALUE = b"v" * 100
CHUNK = 200

#: A side of a comparison: runs operations ``start..stop``.
Side = Callable[[int, int], None]


def alternate(rounds: int, count: int, sides: dict[str, Side]) -> dict[str, tuple[float, float]]:
    """Best (wall, CPU) seconds per operation for each side, the sides taking turns per chunk."""
    best = {name: (float("inf"), float("inf")) for name in sides}
    for _ in range(rounds):
        totals = dict.fromkeys(sides, (0.0, 0.0))
        for start in range(0, count, CHUNK):
            stop = min(start + CHUNK, count)
            for name, side in sides.items():
                wall, cpu = time.perf_counter(), time.process_time()
                side(start, stop)
                spent = (time.perf_counter() - wall, time.process_time() - cpu)
                totals[name] = (totals[name][0] + spent[0], totals[name][1] + spent[1])
        for name, (wall, cpu) in totals.items():
            best[name] = (min(best[name][0], wall / count), min(best[name][1], cpu / count))
    return best


def store_sides(store: Store, tag: str) -> dict[str, Side]:
    """write, read and list-100 through a Store."""

    def write(start: int, stop: int) -> None:
        for i in range(start, stop):
            store.write(Record(f"{tag}/{i:08d}", VALUE))

    def read(start: int, stop: int) -> None:
        for i in range(start, stop):
            store.read(f"{tag}/{i:08d}")

    def list_100(start: int, stop: int) -> None:
        for i in range(start, stop):
            store.list(prefix=f"{tag}/{i % 10:06d}", limit=100)

    return {"write": write, "read": read, "list-100": list_100}


def raw_sides(conn: psycopg.Connection[Any], tag: str) -> dict[str, Side]:
    """The same statements and parameters as PostgresStore sends, on one raw connection."""
    ns = schema.namespace_id("micro", "micro")

    def write(start: int, stop: int) -> None:
        for i in range(start, stop):
            key = f"{tag}/{i:08d}"
            params = {
                "ns": ns,
                "key": key.encode(),
                "reversed": key[::-1].encode(),
                "value": VALUE,
                "metadata": None,
                "at": None,
                "ttl": None,
            }
            conn.execute(schema.UPSERT, params)

    def read(start: int, stop: int) -> None:
        for i in range(start, stop):
            key = f"{tag}/{i:08d}".encode()
            conn.execute(schema.READ_ONE, {"ns": ns, "key": key, "now": None}).fetchone()

    def list_100(start: int, stop: int) -> None:
        query = schema.LIST[True, False]
        for i in range(start, stop):
            low = f"{tag}/{i % 10:06d}".encode()
            params = {"ns": ns, "now": None, "lo": low, "hi": schema.next_prefix(low)}
            params.update(limit=100, offset=0)
            conn.execute(query, params).fetchall()

    return {"write": write, "read": read, "list-100": list_100}


def compare(stores: dict[str, dict[str, Side]], rounds: int, count: int) -> None:
    """Print wall and CPU µs per operation of every store, and the adapter's ratio to raw."""
    results: dict[str, dict[str, tuple[float, float]]] = {}
    for workload in ("write", "read", "list-100"):
        sides = {name: stores[name][workload] for name in stores}
        results[workload] = alternate(rounds, count, sides)
    names = list(stores)
    print("\n| workload | " + " | ".join(names) + " | PostgresStore / raw (wall, CPU) |")
    print("| --- " * (len(names) + 2) + "|")
    for workload, best in results.items():
        cells = [f"{best[n][0] * 1e6:.0f} µs ({best[n][1] * 1e6:.0f} CPU)" for n in names]
        wall = best["PostgresStore"][0] / best["raw psycopg"][0]
        cpu = best["PostgresStore"][1] / best["raw psycopg"][1]
        print(f"| {workload} | " + " | ".join(cells) + f" | {wall:.2f}x, {cpu:.2f}x |")


def explain(store: PostgresStore, conn: psycopg.Connection[Any], rows: int) -> None:
    """Bulk-load ``rows`` rows into the store's table and EXPLAIN a prefix and a suffix list."""
    ns = schema.namespace_id("micro", "micro")
    started = time.perf_counter()
    conn.execute(
        "INSERT INTO seglog_records (namespace, key, reversed_key, value)"
        " SELECT %(ns)s, convert_to(k, 'UTF8'), convert_to(reverse(k), 'UTF8'), %(value)s"
        " FROM (SELECT 'user/' || lpad(i::text, 8, '0') AS k"
        " FROM generate_series(1, %(rows)s) AS i) AS keys ON CONFLICT DO NOTHING",
        {"ns": ns, "value": VALUE, "rows": rows},
    )
    conn.execute("ANALYZE seglog_records")
    print(f"\nloaded {rows} rows in {time.perf_counter() - started:.1f} s")
    prefix = f"user/{rows // 2 // 100:06d}"  # 'user/' + 6 of 8 digits: 100 keys
    assert len(store.list(prefix=prefix)) == 100
    for label, query, bounds in (
        ("prefix list of 100 keys", schema.LIST[True, False], ("lo", "hi", prefix)),
        ("suffix list (keys ending in 12345)", schema.LIST[False, True], ("rlo", "rhi", "54321")),
    ):
        low, high, text = bounds
        args: dict[str, Any] = {"ns": ns, "now": None, "limit": schema.NO_LIMIT, "offset": 0}
        args[low] = text.encode()
        args[high] = schema.next_prefix(args[low])
        plan = conn.execute("EXPLAIN (ANALYZE, BUFFERS) " + query, args).fetchall()
        print(f"\n{label}:\n" + "\n".join("    " + row[0] for row in plan))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dsn", help="an existing server's DSN (default: start one)")
    parser.add_argument("--ops", type=int, default=2000, help="operations per workload")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows for the EXPLAIN")
    parser.add_argument("--quick", action="store_true", help="1,000 ops, 100k rows")
    args = parser.parse_args()
    if args.quick:
        args.ops, args.rows = 1000, 100_000
    if args.ops < 1000:
        parser.error("--ops must be at least 1000 (the list-100 workload needs 1,000 keys)")
    server = None if args.dsn else TemporaryServer().init().start()
    workdir = tempfile.mkdtemp(prefix="seglog-bench-pg-")
    try:
        dsn = server.create_database("bench") if server is not None else args.dsn
        store = PostgresStore(dsn, reap_interval=0)
        always = LogStore(os.path.join(workdir, "always"), sync="always")
        periodic = LogStore(os.path.join(workdir, "periodic"))
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.execute("SELECT version()").fetchone()
            print(f"server: {version[0] if version else '?'}")
            compare(
                {
                    "PostgresStore": store_sides(store, "store"),
                    "raw psycopg": raw_sides(conn, "raw"),
                    'LogStore "always"': store_sides(always, "log"),
                    'LogStore "periodic"': store_sides(periodic, "log"),
                },
                args.rounds,
                args.ops,
            )
            explain(store, conn, args.rows)
        for each in (store, always, periodic):
            each.disconnect()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if server is not None:
            server.close()


if __name__ == "__main__":
    main()
