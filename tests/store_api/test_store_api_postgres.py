"""What ``PostgresStore`` adds to the shared conformance suite (STORE_API.md, "PostgresStore").

The schema, the 2,048-byte key limit, hostile names, exact metadata, the
server's clock, reaping, ``new_store``. Faults (a silent, stopped, restarted or
failed-over server) are in ``test_store_api_postgres_faults.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest

from store_api import NotFoundError, Record, new_store

if TYPE_CHECKING:
    from store_api import PostgresStore

HOSTILE = [
    "'; DROP TABLE seglog_records; --",
    'a"b',
    "50%_off\\",
    "a\x00b",
    "\x00",
    "日本😀",
    "$1",
    "%(ns)s",
]


@pytest.fixture
def make(postgres_fresh_dsn: Callable[[], str]) -> Iterator[Callable[..., PostgresStore]]:
    """Makes PostgresStores, each on a fresh schema unless given a DSN; disconnects them after."""
    from store_api import PostgresStore

    made: list[PostgresStore] = []

    def factory(dsn: str | None = None, **options: Any) -> PostgresStore:
        options.setdefault("reap_interval", 0)
        store = PostgresStore(dsn or postgres_fresh_dsn(), **options)
        made.append(store)
        return store

    yield factory
    for store in made:
        store.disconnect()


def columns(store: PostgresStore) -> dict[str, str]:
    """Column name -> SQL type of seglog's record table."""
    rows = store._run(
        lambda conn: conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'seglog_records' AND table_schema = current_schema()"
        ).fetchall()
    )
    return dict(rows)


def test_str_and_new_store(postgres_server: Any, make: Callable[..., PostgresStore]) -> None:
    from store_api import PostgresStore

    dsn = make().options().nodes[0]
    assert str(make(dsn)) == "postgres"
    store = new_store(nodes=[postgres_server.url("seglog_test")], table="t", reap_interval=0)
    try:
        assert isinstance(store, PostgresStore)
        assert store.options().table == "t"
    finally:
        store.disconnect()
    with pytest.raises(ValueError, match="mix"):
        new_store(nodes=[postgres_server.url("seglog_test"), "/tmp/dir"])


def test_schema_types(make: Callable[..., PostgresStore]) -> None:
    store = make()
    assert columns(store) == {
        "namespace": "bigint",
        "key": "bytea",
        "reversed_key": "bytea",
        "value": "bytea",
        "metadata": "text",
        "expires_at": "timestamp with time zone",
    }


def test_keys_up_to_2048_utf8_bytes(make: Callable[..., PostgresStore]) -> None:
    store = make()
    longest = "é" * 1024  # 2,048 bytes
    store.write(Record(longest, b"v"))
    assert store.read(longest)[0].value == b"v"
    for too_long in ("é" * 1024 + "x", "x" * 5000):
        with pytest.raises(ValueError, match="2048"):
            store.write(Record(too_long, b"v"))
        with pytest.raises(NotFoundError):
            store.read(too_long)
    assert store.list() == [longest]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_keys_and_names(make: Callable[..., PostgresStore], name: str) -> None:
    store = make()
    store.write(Record(name, b"v"), database=name, table=name)
    store.write(Record("k", b"w"), database=name, table=name + "x")
    assert store.read(name, database=name, table=name)[0].value == b"v"
    assert store.list(database=name, table=name) == [name]
    assert store.list(database=name, table=name, prefix=name[:2], suffix=name[-1:]) == [name]
    assert store.list(database=name, table=name + "x") == ["k"]
    assert store.list() == []
    assert columns(store)  # the table is still there


def test_thousand_character_names_do_not_collide(make: Callable[..., PostgresStore]) -> None:
    store = make()
    long_a = "n" * 999 + "a"
    long_b = "n" * 999 + "b"
    pairs = [(long_a, long_b), (long_b, long_a), (long_a + "'", long_b), ("a/b", "c"), ("a", "b/c")]
    for index, (database, table) in enumerate(pairs):
        store.write(Record("k", str(index).encode()), database=database, table=table)
    for index, (database, table) in enumerate(pairs):
        assert store.read("k", database=database, table=table)[0].value == str(index).encode()
    assert sorted(store.namespaces()) == sorted(pairs)


def test_metadata_is_exact(make: Callable[..., PostgresStore]) -> None:
    store = make()
    metadata = {"nul": "a\x00b", "big": 1e300, "negzero": -0.0, "int": 2**70, "s": "\\u0000"}
    store.write(Record("k", b"v", metadata))
    again = store.read("k")[0].metadata
    assert again == metadata
    assert math.copysign(1.0, again["negzero"]) == -1.0
    assert type(again["int"]) is int


def test_server_clock_gives_remaining_lifetime(make: Callable[..., PostgresStore]) -> None:
    store = make(clock=None)
    store.write(Record("k", b"v"), ttl=100)
    store.write(Record("gone", b"v"), ttl=-1)
    left = store.read("k")[0].expiry
    assert timedelta(0) < left <= timedelta(seconds=100)
    assert store.list() == ["k"]
    with pytest.raises(NotFoundError):
        store.read("gone")


def test_reaping_deletes_expired_rows_from_seglogs_table_only(
    make: Callable[..., PostgresStore],
) -> None:
    now = [1_700_000_000.0]
    store = make(clock=lambda: now[0], reap_batch=3)
    for index in range(10):
        store.write(Record(f"short{index}", b"v"), ttl=5)
    store.write(Record("long", b"v"), ttl=50)
    store.write(Record("forever", b"v"))
    store._run(
        lambda conn: conn.execute(
            "CREATE TABLE other (key BYTEA, expires_at TIMESTAMPTZ);"
            " INSERT INTO other VALUES ('x', '2000-01-01')"
        )
    )
    assert store.reap_expired() == 0
    now[0] += 10
    assert store.reap_expired() == 10
    stored = store._run(lambda conn: conn.execute("SELECT count(*) FROM seglog_records").fetchone())
    assert stored == (2,)
    assert store._run(lambda conn: conn.execute("SELECT count(*) FROM other").fetchone()) == (1,)
    assert store.list() == ["forever", "long"]


def test_bad_options_raise(make: Callable[..., PostgresStore]) -> None:
    from store_api import PostgresStore

    for options, error in [
        ({"timeout": 0}, ValueError),
        ({"timeout": "5"}, ValueError),
        ({"pool_size": 0}, ValueError),
        ({"dialect": "oracle"}, ValueError),
        ({"colour": "blue"}, TypeError),
    ]:
        with pytest.raises(error):
            PostgresStore("postgresql://127.0.0.1:1/x", **options)
    with pytest.raises(ValueError):
        PostgresStore("host=x port")
    store = make()
    with pytest.raises(ValueError):
        store.init(timeout=-1)
    assert store.options().engine_options["timeout"] == 5.0
