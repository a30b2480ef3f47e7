"""``seglog copy SRC DST`` between store directories and PostgreSQL, both ways.

A 100k-record store with metadata, lifetimes and awkward names goes to
PostgreSQL and back into a new directory; everything arrives, lifetimes shrink
but never grow, a second run changes nothing, and a selected copy copies only
what was selected.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from store_api import LogStore, Record

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

#: (database, table) -> how many records; 100,000 in all.
TABLES = {("micro", "micro"): 80_000, ("shop", "carts"): 19_990, ("a\x00b", "t/é'%"): 10}
TTL = 3600.0


def fill(path: Path) -> None:
    with LogStore(path, sync="none") as store:
        for (database, table), count in TABLES.items():
            for i in range(count):
                metadata = {"i": i, "f": -0.0, "s": "x\x00y"} if i % 10 == 0 else {}
                store.write(
                    Record(f"k{i:06d}/ü", b"v%d" % i, metadata),
                    database=database,
                    table=table,
                    ttl=TTL if i % 7 == 0 else None,
                )
        store.write(Record("gone", b"v"), ttl=-1)


def contents(path: Path) -> dict[tuple[str, str], list[tuple[str, bytes, dict[str, Any], bool]]]:
    """Every table's records as (key, value, metadata, expires?)."""
    with LogStore(path, sync="none") as store:
        found = {}
        for database, table in store.namespaces():
            records = store.records(database=database, table=table)
            found[database, table] = [
                (r.key, r.value, r.metadata, r.expiry != timedelta(0)) for r in records
            ]
            for record in store.records(database=database, table=table):
                assert timedelta(0) <= record.expiry <= timedelta(seconds=TTL)
        return found


def test_copy_round_trips_through_postgres(cli: Cli, tmp_path: Path, postgres_server: Any) -> None:
    source, back = tmp_path / "source", tmp_path / "back"
    fill(source)
    url = postgres_server.url("copy_round_trip")
    postgres_server.create_database("copy_round_trip")

    there = cli("copy", source, url)
    assert there.status == 0, there.err
    assert "copied 100000 records in 3 tables" in there.err
    again = cli("copy", source, url)
    assert again.status == 0, again.err
    home = cli("copy", url, back)
    assert home.status == 0, home.err
    assert "copied 100000 records in 3 tables" in home.err

    expected = contents(source)
    assert sum(map(len, expected.values())) == 100_000
    assert contents(back) == expected


def test_copy_only_the_selected_tables(cli: Cli, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    with LogStore(source, sync="none") as store:
        store.write(Record("a", b"1"), database="shop", table="carts")
        store.write(Record("b", b"2"), database="shop", table="users")
        store.write(Record("c", b"3"))
    done = cli("copy", source, target, "--database", "shop", "--table", "carts")
    assert done.status == 0, done.err
    with LogStore(target, sync="none") as store:
        assert store.namespaces() == [("shop", "carts")]
        assert store.read("a", database="shop", table="carts")[0].value == b"1"


def test_copy_refuses_the_same_store_and_a_missing_source(cli: Cli, tmp_path: Path) -> None:
    assert cli("copy", tmp_path, tmp_path).status == 2
    missing = cli("copy", tmp_path / "nothing", tmp_path / "target")
    assert missing.status == 3 and "no such directory" in missing.err
