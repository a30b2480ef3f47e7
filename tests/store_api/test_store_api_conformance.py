"""STORE_API.md, item by item, against every backend in ``conftest.BACKENDS``.

Each test names the item it checks. Only the ``Store`` interface, the fake
clock and ``StoreFactory.reopen`` are used, so a new backend runs this file
unchanged.
"""

from __future__ import annotations

import dataclasses
from abc import ABC
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

import store_api
from store_api import NotFoundError, Options, Record, Store

if TYPE_CHECKING:
    from conftest import FakeClock, StoreFactory

NASTY_KEYS = [
    "/",
    "a/b",
    "/leading",
    "trailing/",
    "..",
    "../etc/passwd",
    "a/../b",
    "./a",
    "%",
    "%2F",
    "_",
    "a_b",
    "*",
    "a*",
    "?",
    "[a-z]",
    " ",
    "  spaced  key ",
    "\t\n",
    "\x00",
    "a\x00",
    "a\x00b",
    "\x00\x00",
    "\x01",
    "\xff",
    "é",
    "e\u0301",
    "日本語",
    "😀",
    "a😀b",
    "\U0010ffff",
    "\\",
    "'\"",
    "key" * 200,
]


def keys_of(records: list[Record]) -> list[str]:
    return [record.key for record in records]


def write_all(store: Store, keys: list[str], **options: Any) -> None:
    for key in keys:
        store.write(Record(key, key.encode("utf-8", "surrogatepass")), **options)


# -- names and the interface ----------------------------------------------------------


def test_names_are_importable() -> None:
    for name in (
        "Store",
        "Record",
        "Options",
        "NotFoundError",
        "LogStore",
        "new_store",
        "default_store",
    ):
        assert hasattr(store_api, name), name
    assert issubclass(store_api.Store, ABC)
    assert issubclass(store_api.LogStore, store_api.Store)


def test_record_is_a_dataclass_with_defaults() -> None:
    assert [field.name for field in dataclasses.fields(Record)] == [
        "key",
        "value",
        "metadata",
        "expiry",
    ]
    record = Record("k", b"v")
    assert record.metadata == {}
    assert record.expiry == timedelta(0)
    assert Record("k", b"v").metadata is not Record("k", b"v").metadata
    assert Record("k", b"v", {"a": 1}, timedelta(seconds=3)) == Record("k", b"v", {"a": 1}, 3)


@pytest.mark.parametrize(("given", "expected"), [(5, 5.0), (1.5, 1.5), (0, 0.0), (-2, -2.0)])
def test_record_expiry_accepts_seconds(given: float, expected: float) -> None:
    expiry = Record("k", b"v", expiry=given).expiry
    assert isinstance(expiry, timedelta)
    assert expiry.total_seconds() == expected


def test_options_is_a_frozen_dataclass(store: Store) -> None:
    options = store.options()
    assert isinstance(options, Options)
    for name in ("nodes", "database", "table", "path"):
        assert hasattr(options, name)
    assert isinstance(options.nodes, tuple)
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.database = "other"  # type: ignore[misc]


def test_not_found_error_is_a_key_error() -> None:
    assert issubclass(NotFoundError, KeyError)


def test_str_is_non_empty_and_stable(store: Store) -> None:
    name = str(store)
    assert name
    assert str(store) == name
    store.disconnect()
    assert str(store) == name


def test_log_store_calls_itself_seglog(store_factory: StoreFactory) -> None:
    store = store_factory()
    if isinstance(store, store_api.LogStore):
        assert str(store) == "seglog"


def test_default_options(store: Store) -> None:
    options = store.options()
    assert options.database == "micro"
    assert options.table == "micro"


def test_connect_is_idempotent(store: Store) -> None:
    store.write(Record("k", b"v"))
    store.connect()
    store.connect()
    assert store.read("k")[0].value == b"v"


def test_context_manager_connects_and_disconnects(
    store_factory: StoreFactory,
) -> None:
    store = store_factory()
    store.disconnect()
    with store as entered:
        assert entered is store
        store.write(Record("k", b"v"))
    again = store_factory.reopen(store)
    assert again.read("k")[0].value == b"v"


def test_context_manager_disconnects_on_error(store_factory: StoreFactory) -> None:
    store = store_factory()
    with pytest.raises(RuntimeError), store:
        store.write(Record("k", b"v"))
        raise RuntimeError("boom")
    again = store_factory.reopen(store)
    assert again.read("k")[0].value == b"v"


def test_init_merges_options_and_keeps_data(store: Store) -> None:
    store.write(Record("k", b"v"))
    before = store.options()
    store.init(table="other")
    after = store.options()
    assert after.table == "other"
    assert after.database == before.database
    assert after.path == before.path
    assert after.nodes == before.nodes
    assert store.list() == []
    store.write(Record("k2", b"v2"))
    store.init(table="micro")
    assert store.options().table == "micro"
    assert store.read("k")[0].value == b"v"
    assert store.list(table="other") == ["k2"]


def test_init_with_nothing_changes_nothing(store: Store) -> None:
    store.write(Record("k", b"v"))
    before = store.options()
    store.init()
    assert store.options() == before
    assert store.read("k")[0].value == b"v"


def test_init_rejects_bad_options_and_keeps_the_old_ones(store: Store) -> None:
    before = store.options()
    with pytest.raises((TypeError, ValueError)):
        store.init(database=42)
    assert store.options() == before


# -- 1. exact read ------------------------------------------------------------------------


def test_1_exact_read_returns_one_record(store: Store) -> None:
    store.write(Record("k", b"v", {"a": 1}))
    store.write(Record("k2", b"v2"))
    records = store.read("k")
    assert isinstance(records, list)
    assert records == [Record("k", b"v", {"a": 1}, timedelta(0))]


def test_1_exact_read_of_missing_key_raises(store: Store) -> None:
    with pytest.raises(NotFoundError):
        store.read("missing")
    with pytest.raises(KeyError):
        store.read("missing")


def test_1_exact_read_of_expired_key_raises(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v"), ttl=1)
    clock.advance(1)
    with pytest.raises(NotFoundError):
        store.read("k")


def test_1_exact_read_ignores_limit_and_offset(store: Store) -> None:
    store.write(Record("k", b"v"))
    assert keys_of(store.read("k", limit=1, offset=5)) == ["k"]
    assert keys_of(store.read("k", offset=1)) == ["k"]


def test_1_exact_read_does_not_match_prefixes(store: Store) -> None:
    store.write(Record("key", b"v"))
    with pytest.raises(NotFoundError):
        store.read("ke")
    with pytest.raises(NotFoundError):
        store.read("key2")


# -- 2. prefix and suffix reads -----------------------------------------------------------


def test_2_prefix_read(store: Store) -> None:
    write_all(store, ["user/1", "user/2", "user", "users/1", "admin/1"])
    assert keys_of(store.read("user/", prefix=True)) == ["user/1", "user/2"]
    assert keys_of(store.read("user", prefix=True)) == ["user", "user/1", "user/2", "users/1"]
    assert store.read("user/1", prefix=True)[0].value == b"user/1"


def test_2_suffix_read(store: Store) -> None:
    write_all(store, ["a.json", "b.json", "c.txt", "json", "x.json.bak"])
    assert keys_of(store.read(".json", suffix=True)) == ["a.json", "b.json"]
    assert keys_of(store.read("json", suffix=True)) == ["a.json", "b.json", "json"]
    assert store.read(".txt", suffix=True)[0].value == b"c.txt"


def test_2_prefix_and_suffix_must_both_match(store: Store) -> None:
    write_all(store, ["ab", "abab", "abxab", "abx", "xab", "a"])
    assert keys_of(store.read("ab", prefix=True, suffix=True)) == ["ab", "abab", "abxab"]


def test_2_no_match_is_an_empty_list(store: Store) -> None:
    write_all(store, ["a", "b"])
    assert store.read("zzz", prefix=True) == []
    assert store.read("zzz", suffix=True) == []
    assert store.read("zzz", prefix=True, suffix=True) == []
    assert store.list(prefix="zzz") == []
    assert store.list(suffix="zzz") == []


def test_2_empty_prefix_matches_the_whole_table(store: Store) -> None:
    write_all(store, ["b", "a"])
    store.write(Record("c", b"c"), table="other")
    assert keys_of(store.read("", prefix=True)) == ["a", "b"]
    assert keys_of(store.read("", suffix=True)) == ["a", "b"]


@pytest.mark.parametrize("query", ["read", "list"])
def test_2_suffix_queries_see_later_writes_and_deletes(
    store: Store, clock: FakeClock, query: str
) -> None:
    def matching(suffix: str) -> list[str]:
        if query == "read":
            return keys_of(store.read(suffix, suffix=True))
        return store.list(suffix=suffix)

    write_all(store, ["a.x", "b.y", "d.x"])
    assert matching(".x") == ["a.x", "d.x"]
    write_all(store, ["c.x"])
    store.delete("a.x")
    store.write(Record("d.x", b"short-lived"), ttl=1)
    assert matching(".x") == ["c.x", "d.x"]
    clock.advance(1)
    assert matching(".x") == ["c.x"]
    write_all(store, ["a.x", "d.x"])
    assert matching(".x") == ["a.x", "c.x", "d.x"]
    store.delete("c.x")
    assert matching("x") == ["a.x", "d.x"]


# -- 3. order -------------------------------------------------------------------------------


def test_3_results_are_in_code_point_order(store: Store) -> None:
    keys = ["b", "a", "B", "é", "😀", "a\x00", "a\x01", "ab", "\x00", "z", "日", "\uffff", "A"]
    write_all(store, keys)
    expected = sorted(keys)
    assert expected == sorted(keys, key=lambda k: k.encode("utf-8"))
    assert store.list() == expected
    assert keys_of(store.read("", prefix=True)) == expected
    assert keys_of(store.read("a", prefix=True)) == ["a", "a\x00", "a\x01", "ab"]
    assert store.list(suffix="") == expected


def test_3_suffix_results_are_sorted_by_key_not_by_reversed_key(store: Store) -> None:
    keys = ["zb", "ab", "mb", "b", "bb"]
    write_all(store, keys)
    assert store.list(suffix="b") == sorted(keys)
    assert keys_of(store.read("b", suffix=True)) == sorted(keys)


# -- 4. pagination --------------------------------------------------------------------------


PAGES = [(0, 0), (3, 0), (0, 3), (3, 3), (2, 9), (0, 10), (0, 11), (5, 100), (100, 0), (1, 1)]


@pytest.mark.parametrize(("limit", "offset"), PAGES)
def test_4_list_pagination(store: Store, limit: int, offset: int) -> None:
    keys = [f"k{i:02d}" for i in range(10)]
    write_all(store, list(reversed(keys)))
    expected = keys[offset:][: limit or None]
    assert store.list(limit=limit, offset=offset) == expected
    assert store.list(prefix="k", limit=limit, offset=offset) == expected
    assert keys_of(store.read("k", prefix=True, limit=limit, offset=offset)) == expected


@pytest.mark.parametrize(("limit", "offset"), PAGES)
def test_4_pagination_filters_first(store: Store, limit: int, offset: int) -> None:
    keys = [f"k{i:02d}" for i in range(20)]
    write_all(store, keys)
    write_all(store, ["j00", "l00"])
    odd = [key for key in keys if key.endswith(("1", "3", "5", "7", "9"))]
    assert (
        store.list(suffix="1", limit=limit, offset=offset)
        == [key for key in keys if key.endswith("1")][offset:][: limit or None]
    )
    for suffix in ("1", "3", "5", "7", "9"):
        assert (
            keys_of(store.read(suffix, suffix=True, limit=limit, offset=offset))
            == [key for key in odd if key.endswith(suffix)][offset:][: limit or None]
        )
    assert (
        store.list(prefix="k0", suffix="1", limit=limit, offset=offset)
        == ["k01"][offset:][: limit or None]
    )


def test_4_pagination_skips_expired_records_before_counting(store: Store, clock: FakeClock) -> None:
    write_all(store, ["a", "c", "e"])
    write_all(store, ["b", "d"], ttl=5)
    assert store.list(offset=1, limit=2) == ["b", "c"]
    clock.advance(5)
    assert store.list(offset=1, limit=2) == ["c", "e"]
    assert keys_of(store.read("", prefix=True, offset=1, limit=2)) == ["c", "e"]


@pytest.mark.parametrize(("limit", "offset"), [(-1, 0), (0, -1), (-5, -5)])
def test_4_negative_limit_or_offset_raises(store: Store, limit: int, offset: int) -> None:
    write_all(store, ["a"])
    with pytest.raises(ValueError):
        store.list(limit=limit, offset=offset)
    with pytest.raises(ValueError):
        store.read("a", prefix=True, limit=limit, offset=offset)
    with pytest.raises(ValueError):
        store.read("a", suffix=True, limit=limit, offset=offset)


# -- 5. upsert ------------------------------------------------------------------------------


def test_5_write_replaces_value_and_metadata(store: Store) -> None:
    store.write(Record("k", b"old", {"a": 1, "b": 2}))
    store.write(Record("k", b"new", {"c": 3}))
    assert store.read("k") == [Record("k", b"new", {"c": 3})]
    store.write(Record("k", b"newer"))
    assert store.read("k") == [Record("k", b"newer", {})]


def test_5_rewrite_without_expiry_clears_it(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v"), ttl=10)
    store.write(Record("k", b"v2"))
    clock.advance(100)
    assert store.read("k") == [Record("k", b"v2", {}, timedelta(0))]


def test_5_rewrite_with_expiry_sets_it(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v"))
    store.write(Record("k", b"v2"), ttl=10)
    assert store.read("k")[0].expiry == timedelta(seconds=10)
    clock.advance(10)
    with pytest.raises(NotFoundError):
        store.read("k")


def test_5_write_revives_an_expired_key(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v"), ttl=1)
    clock.advance(2)
    store.write(Record("k", b"v2"))
    assert store.read("k")[0].value == b"v2"


# -- 6. expiry precedence -------------------------------------------------------------------


def at(clock: FakeClock, seconds: float) -> datetime:
    """The absolute time ``seconds`` from the fake clock's now."""
    return datetime.fromtimestamp(clock() + seconds, tz=UTC)


def remaining(store: Store, key: str) -> float:
    return store.read(key)[0].expiry.total_seconds()


def test_6_ttl_beats_expiry_beats_record_expiry(store: Store, clock: FakeClock) -> None:
    store.write(Record("all", b"v", expiry=30), expiry=at(clock, 20), ttl=10)
    store.write(Record("two", b"v", expiry=30), expiry=at(clock, 20))
    store.write(Record("one", b"v", expiry=30))
    store.write(Record("ttl", b"v"), ttl=timedelta(seconds=10))
    assert remaining(store, "all") == 10
    assert remaining(store, "two") == 20
    assert remaining(store, "one") == 30
    assert remaining(store, "ttl") == 10


def test_6_zero_or_none_means_not_set(store: Store, clock: FakeClock) -> None:
    store.write(Record("a", b"v", expiry=30), ttl=0)
    store.write(Record("b", b"v", expiry=30), ttl=timedelta(0), expiry=None)
    store.write(Record("c", b"v", expiry=30), ttl=None, expiry=at(clock, 20))
    store.write(Record("d", b"v", expiry=0), ttl=0)
    store.write(Record("e", b"v", expiry=timedelta(0)))
    assert remaining(store, "a") == 30
    assert remaining(store, "b") == 30
    assert remaining(store, "c") == 20
    assert remaining(store, "d") == 0
    assert remaining(store, "e") == 0
    clock.advance(10**6)
    assert store.list() == ["d", "e"]


@pytest.mark.parametrize(
    "how",
    ["ttl", "ttl_timedelta", "expiry", "expiry_now", "record", "record_timedelta"],
)
def test_6_negative_or_past_means_already_expired(store: Store, clock: FakeClock, how: str) -> None:
    store.write(Record("k", b"old"))
    record = Record("k", b"new")
    if how == "ttl":
        store.write(record, ttl=-1)
    elif how == "ttl_timedelta":
        store.write(record, ttl=timedelta(microseconds=-1))
    elif how == "expiry":
        store.write(record, expiry=at(clock, -1))
    elif how == "expiry_now":
        store.write(record, expiry=at(clock, 0))
    elif how == "record":
        store.write(Record("k", b"new", expiry=-1))
    else:
        store.write(Record("k", b"new", expiry=timedelta(seconds=-5)))
    with pytest.raises(NotFoundError):
        store.read("k")
    assert store.list() == []
    assert store.read("k", prefix=True) == []


def test_6_negative_ttl_beats_positive_record_expiry(store: Store) -> None:
    store.write(Record("k", b"v", expiry=60), ttl=-1)
    with pytest.raises(NotFoundError):
        store.read("k")


def test_6_naive_datetime_is_local_time(store: Store, clock: FakeClock) -> None:
    naive = datetime.fromtimestamp(clock() + 50)
    store.write(Record("k", b"v"), expiry=naive)
    assert remaining(store, "k") == 50


# -- 7. expired records are gone ------------------------------------------------------------


def test_7_expired_records_vanish_everywhere(store: Store, clock: FakeClock) -> None:
    write_all(store, ["keep.x", "keep.y"])
    write_all(store, ["gone.x", "gone.y"], ttl=5)
    clock.advance(4.999)
    assert store.list() == ["gone.x", "gone.y", "keep.x", "keep.y"]
    clock.advance(0.001)
    assert store.list() == ["keep.x", "keep.y"]
    assert store.list(prefix="gone") == []
    assert store.list(suffix=".x") == ["keep.x"]
    assert keys_of(store.read("gone", prefix=True)) == []
    assert keys_of(store.read(".x", suffix=True)) == ["keep.x"]
    assert keys_of(store.read("", prefix=True)) == ["keep.x", "keep.y"]
    for key in ("gone.x", "gone.y"):
        with pytest.raises(NotFoundError):
            store.read(key)


def test_7_expired_record_can_be_deleted_quietly(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v"), ttl=1)
    clock.advance(2)
    store.delete("k")
    assert store.list() == []


# -- 8. remaining lifetime ------------------------------------------------------------------


@pytest.mark.parametrize(
    "ttl", [1, 0.5, 1e-6, 2.5, 3600, timedelta(days=400), timedelta(microseconds=1)]
)
def test_8_read_returns_remaining_lifetime(
    store: Store, clock: FakeClock, ttl: float | timedelta
) -> None:
    requested = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    store.write(Record("k", b"v"), ttl=ttl)
    first = store.read("k")[0].expiry
    assert timedelta(0) < first <= requested
    assert first == requested
    clock.advance(requested.total_seconds() / 2)
    half = store.read("k")[0].expiry
    assert timedelta(0) < half <= first
    for via_prefix in (store.read("k", prefix=True), store.read("k", suffix=True)):
        assert timedelta(0) < via_prefix[0].expiry <= half


def test_8_remaining_lifetime_shrinks(store: Store, clock: FakeClock) -> None:
    store.write(Record("k", b"v", expiry=100))
    clock.advance(30)
    assert store.read("k")[0].expiry == timedelta(seconds=70)
    clock.advance(69.5)
    assert store.read("k")[0].expiry == timedelta(seconds=0.5)


def test_8_never_expiring_records_report_zero(store: Store) -> None:
    store.write(Record("k", b"v"))
    assert store.read("k")[0].expiry == timedelta(0)
    assert store.read("k", prefix=True)[0].expiry == timedelta(0)


def test_8_remaining_lifetime_survives_reopen(
    store_factory: StoreFactory, clock: FakeClock
) -> None:
    store = store_factory()
    store.write(Record("k", b"v", {"m": 1}), ttl=60)
    clock.advance(15)
    again = store_factory.reopen(store)
    assert again.read("k") == [Record("k", b"v", {"m": 1}, timedelta(seconds=45))]
    clock.advance(45)
    assert again.list() == []


# -- 9. delete ----------------------------------------------------------------------------


def test_9_delete_removes_and_is_idempotent(store: Store) -> None:
    write_all(store, ["a", "b"])
    store.delete("a")
    store.delete("a")
    store.delete("never-written")
    with pytest.raises(NotFoundError):
        store.read("a")
    assert store.list() == ["b"]


def test_9_delete_touches_only_its_namespace(store: Store) -> None:
    for database in ("micro", "db2"):
        for table in ("micro", "t2"):
            store.write(Record("k", f"{database}/{table}".encode()), database=database, table=table)
    store.delete("k", database="db2", table="t2")
    with pytest.raises(NotFoundError):
        store.read("k", database="db2", table="t2")
    assert store.read("k", database="db2")[0].value == b"db2/micro"
    assert store.read("k", table="t2")[0].value == b"micro/t2"
    assert store.read("k")[0].value == b"micro/micro"


# -- 10. namespaces -------------------------------------------------------------------------


def test_10_defaults_come_from_options(store_factory: StoreFactory) -> None:
    store = store_factory(database="app", table="users")
    store.write(Record("k", b"v"))
    assert store.read("k", database="app", table="users")[0].value == b"v"
    assert store.list(database="app", table="users") == ["k"]
    assert store.list(database="micro", table="micro") == []


def test_10_empty_names_fall_back_field_by_field(store: Store) -> None:
    store.write(Record("k", b"v"), database="db2")
    assert store.read("k", database="db2", table="micro")[0].value == b"v"
    assert store.read("k", database="db2", table="")[0].value == b"v"
    store.write(Record("k", b"w"), table="t2")
    assert store.read("k", database="micro", table="t2")[0].value == b"w"
    assert store.read("k", database="", table="t2")[0].value == b"w"
    with pytest.raises(NotFoundError):
        store.read("k")


def test_10_init_changes_the_defaults(store: Store) -> None:
    store.write(Record("k", b"v"), database="db2", table="t2")
    store.init(database="db2", table="t2")
    assert store.read("k")[0].value == b"v"
    assert store.list() == ["k"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("a/b", "c"), ("a", "b/c")),
        (("a", "bc"), ("ab", "c")),
        (("a\x00", "b"), ("a", "\x00b")),
        (("a", "\x00"), ("a\x00", "micro")),
        (("x", "y"), ("y", "x")),
        (("micro", "micro\x00"), ("micro\x00", "micro")),
        (("a\x00\x01", "b"), ("a", "b")),
    ],
)
def test_10_namespaces_are_isolated_and_injective(
    store: Store, first: tuple[str, str], second: tuple[str, str]
) -> None:
    store.write(Record("k", b"first"), database=first[0], table=first[1])
    store.write(Record("k/x", b"first"), database=first[0], table=first[1])
    store.write(Record("k", b"second"), database=second[0], table=second[1])
    assert store.read("k", database=first[0], table=first[1])[0].value == b"first"
    assert store.read("k", database=second[0], table=second[1])[0].value == b"second"
    assert store.list(database=first[0], table=first[1]) == ["k", "k/x"]
    assert store.list(database=second[0], table=second[1]) == ["k"]
    assert keys_of(store.read("k", database=second[0], table=second[1], prefix=True)) == ["k"]
    assert store.list(database=second[0], table=second[1], suffix="x") == []


def test_10_table_listing_does_not_leak_into_longer_names(store: Store) -> None:
    store.write(Record("k", b"v"), table="t")
    store.write(Record("k", b"v"), table="t2")
    store.write(Record("k", b"v"), table="t\x00")
    store.write(Record("k", b"v"), database="micro2", table="t")
    assert store.list(table="t") == ["k"]
    assert store.list(table="t", prefix="") == ["k"]


# -- 11. keys are opaque --------------------------------------------------------------------


def test_11_nasty_keys_round_trip(store: Store) -> None:
    write_all(store, NASTY_KEYS)
    for key in NASTY_KEYS:
        [record] = store.read(key)
        assert record.key == key
        assert record.value == key.encode("utf-8", "surrogatepass")
    assert store.list() == sorted(NASTY_KEYS)


def test_11_nasty_keys_survive_reopen(store_factory: StoreFactory) -> None:
    store = store_factory()
    write_all(store, NASTY_KEYS)
    again = store_factory.reopen(store)
    assert again.list() == sorted(NASTY_KEYS)
    assert keys_of(again.read("", prefix=True)) == sorted(NASTY_KEYS)


def test_11_no_path_cleaning(store: Store) -> None:
    write_all(store, ["a/b", "a//b", "a/./b", "a/x/../b"])
    assert store.read("a/b")[0].key == "a/b"
    assert store.list(prefix="a/") == ["a/./b", "a//b", "a/b", "a/x/../b"]
    with pytest.raises(NotFoundError):
        store.read("a/c/../b")


@pytest.mark.parametrize("pattern", ["*", "%", "_", "?", ".", "[a]", "a*", "a%", "a_"])
def test_11_no_wildcards(store: Store, pattern: str) -> None:
    write_all(store, ["a", "ab", "abc", "b", "xyz"])
    assert store.list(prefix=pattern) == []
    assert store.list(suffix=pattern) == []
    assert store.read(pattern, prefix=True) == []
    with pytest.raises(NotFoundError):
        store.read(pattern)


def test_11_wildcard_characters_match_literally(store: Store) -> None:
    write_all(store, ["50%", "50%off", "5_0", "a*b", "a*", "x.y", "xzy"])
    assert store.list(prefix="50%") == ["50%", "50%off"]
    assert store.list(prefix="5_") == ["5_0"]
    assert store.list(suffix="*") == ["a*"]
    assert store.list(prefix="a*") == ["a*", "a*b"]
    assert store.list(suffix=".y") == ["x.y"]


def test_11_nul_inside_keys_and_prefixes(store: Store) -> None:
    write_all(store, ["a", "a\x00", "a\x00b", "a\x00\x00", "a\x01", "ab"])
    assert store.list(prefix="a\x00") == ["a\x00", "a\x00\x00", "a\x00b"]
    assert store.list(suffix="\x00") == ["a\x00", "a\x00\x00"]
    assert store.list(prefix="a", suffix="b") == ["a\x00b", "ab"]


def test_11_keys_are_case_and_normalisation_sensitive(store: Store) -> None:
    write_all(store, ["Key", "key", "é", "e\u0301"])
    assert store.read("Key")[0].key == "Key"
    assert store.read("key")[0].key == "key"
    assert store.read("é")[0].key == "é"
    assert store.read("e\u0301")[0].key == "e\u0301"
    assert len(store.list()) == 4


def test_11_empty_key_raises(store: Store) -> None:
    with pytest.raises(ValueError):
        store.write(Record("", b"v"))
    with pytest.raises(ValueError):
        store.read("")
    with pytest.raises(ValueError):
        store.delete("")
    assert store.list() == []


@pytest.mark.parametrize("key", [None, 1, b"bytes", ["k"], 1.5])
def test_11_non_str_keys_raise(store: Store, key: Any) -> None:
    with pytest.raises(TypeError):
        store.write(Record(key, b"v"))
    with pytest.raises(TypeError):
        store.read(key)
    with pytest.raises(TypeError):
        store.delete(key)
    assert store.list() == []


# -- 12. values ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [b"bytes", bytearray(b"bytearray"), memoryview(b"memoryview"), b"", bytes(range(256))],
)
def test_12_bytes_like_values_read_back_as_bytes(store: Store, value: Any) -> None:
    store.write(Record("k", value))
    read = store.read("k")[0].value
    assert type(read) is bytes
    assert read == bytes(value)
    assert type(store.read("k", prefix=True)[0].value) is bytes


def test_12_large_value(store: Store) -> None:
    value = bytes(range(256)) * 4096
    store.write(Record("k", value))
    assert store.read("k")[0].value == value


@pytest.mark.parametrize("value", ["text", 1, None, 1.5, [1, 2], {"a": 1}, object()])
def test_12_other_values_raise_and_write_nothing(store: Store, value: Any) -> None:
    store.write(Record("k", b"old"))
    with pytest.raises(TypeError):
        store.write(Record("k", value))
    with pytest.raises(TypeError):
        store.write(Record("new", value))
    assert store.read("k")[0].value == b"old"
    assert store.list() == ["k"]


# -- 13. metadata --------------------------------------------------------------------------


METADATA: list[dict[str, Any]] = [
    {"int": 1, "big": 2**70, "neg": -5, "zero": 0},
    {"float": 1.5, "tiny": 1e-300},
    {"str": "text", "unicode": "日本😀", "nul": "a\x00b", "empty": ""},
    {"bool": True, "false": False, "none": None},
    {"list": [1, "two", 3.0, None, [4]], "dict": {"nested": {"deep": [1, {"x": 2}]}}},
    {"": "empty key", "a/b": "slash", "😀": "emoji"},
]


@pytest.mark.parametrize("metadata", METADATA)
def test_13_metadata_round_trips(store: Store, metadata: dict[str, Any]) -> None:
    store.write(Record("k", b"v", metadata))
    read = store.read("k")[0].metadata
    assert read == metadata
    assert [type(value) for value in read.values()] == [type(v) for v in metadata.values()]
    assert store.read("k", prefix=True)[0].metadata == metadata
    assert store.read("k", suffix=True)[0].metadata == metadata


def test_13_ints_stay_ints(store: Store) -> None:
    store.write(Record("k", b"v", {"n": 3, "f": 3.0}))
    metadata = store.read("k")[0].metadata
    assert type(metadata["n"]) is int
    assert type(metadata["f"]) is float


def test_13_metadata_survives_reopen(store_factory: StoreFactory) -> None:
    store = store_factory()
    store.write(Record("k", b"v", METADATA[4]))
    assert store_factory.reopen(store).read("k")[0].metadata == METADATA[4]


class Unserialisable:
    pass


def circular() -> dict[str, Any]:
    data: dict[str, Any] = {}
    data["self"] = data
    return data


@pytest.mark.parametrize(
    "metadata",
    [
        {"object": Unserialisable()},
        {"set": {1, 2}},
        {"bytes": b"raw"},
        {"nested": {"deep": [object()]}},
        {"nan": float("nan")},
        {"inf": float("inf")},
        {1: "int key"},
        {"nested": {2: "int key"}},
        {"fn": len},
        circular(),
    ],
    ids=lambda metadata: repr(metadata)[:30],
)
def test_13_unserialisable_metadata_raises_and_writes_nothing(
    store: Store, metadata: dict[str, Any]
) -> None:
    store.write(Record("k", b"old", {"a": 1}))
    with pytest.raises(TypeError):
        store.write(Record("k", b"new", metadata))
    with pytest.raises(TypeError):
        store.write(Record("other", b"new", metadata))
    assert store.read("k") == [Record("k", b"old", {"a": 1})]
    assert store.list() == ["k"]


# -- 14. no aliasing -----------------------------------------------------------------------


def test_14_mutating_after_write_changes_nothing(store: Store) -> None:
    value = bytearray(b"value")
    nested = [1, 2]
    metadata: dict[str, Any] = {"a": 1, "list": nested}
    record = Record("k", value, metadata)  # type: ignore[arg-type]
    store.write(record)
    value[:] = b"XXXXX"
    metadata["a"] = 2
    metadata["new"] = True
    nested.append(3)
    record.key = "other"
    record.value = b"changed"
    assert store.read("k") == [Record("k", b"value", {"a": 1, "list": [1, 2]})]


def test_14_mutating_a_read_record_changes_nothing(store: Store) -> None:
    store.write(Record("k", b"value", {"a": [1]}))
    for records in (store.read("k"), store.read("k", prefix=True), store.read("k", suffix=True)):
        record = records[0]
        record.metadata["a"].append(2)
        record.metadata["b"] = 1
        record.value = b"changed"
        record.key = "other"
        record.expiry = timedelta(seconds=5)
    assert store.read("k") == [Record("k", b"value", {"a": [1]})]


def test_14_records_without_metadata_do_not_share_a_dict(store: Store) -> None:
    store.write(Record("a", b"v"))
    store.write(Record("b", b"v"))
    first, second = store.read("", prefix=True)
    first.metadata["x"] = 1
    assert second.metadata == {}
    assert store.read("a")[0].metadata == {}
    assert store.read("a")[0].metadata is not store.read("a")[0].metadata


def test_14_mutating_a_listed_key_list_changes_nothing(store: Store) -> None:
    write_all(store, ["a", "b"])
    keys = store.list()
    keys.append("c")
    assert store.list() == ["a", "b"]


# -- 15. durability ------------------------------------------------------------------------


def test_15_data_survives_disconnect_and_connect(store: Store) -> None:
    write_all(store, NASTY_KEYS[:5])
    store.write(Record("meta", b"v", {"m": [1]}), table="t")
    store.disconnect()
    store.connect()
    assert store.list() == sorted(NASTY_KEYS[:5])
    assert store.read("meta", table="t") == [Record("meta", b"v", {"m": [1]})]


def test_15_data_survives_a_new_store_on_the_same_storage(store_factory: StoreFactory) -> None:
    store = store_factory()
    write_all(store, ["a", "b", "c"])
    store.delete("b")
    store.write(Record("a", b"a2"))
    again = store_factory.reopen(store)
    assert again.list() == ["a", "c"]
    assert again.read("a")[0].value == b"a2"


def test_15_disconnect_is_idempotent(store: Store) -> None:
    store.write(Record("k", b"v"))
    store.disconnect()
    store.disconnect()
    store.connect()
    assert store.read("k")[0].value == b"v"


# -- 17. bad input --------------------------------------------------------------------------


BAD_CALLS: list[tuple[str, dict[str, Any], type[Exception]]] = [
    ("ttl", {"ttl": "10"}, TypeError),
    ("ttl", {"ttl": float("nan")}, ValueError),
    ("ttl", {"ttl": float("inf")}, ValueError),
    ("expiry", {"expiry": 10}, TypeError),
    ("expiry", {"expiry": "2030-01-01"}, TypeError),
    ("database", {"database": 1}, TypeError),
    ("table", {"table": None}, TypeError),
    ("table", {"table": b"t"}, TypeError),
]


@pytest.mark.parametrize(("what", "options", "error"), BAD_CALLS)
def test_17_bad_write_options_raise_and_change_nothing(
    store: Store, what: str, options: dict[str, Any], error: type[Exception]
) -> None:
    store.write(Record("k", b"old"))
    with pytest.raises(error):
        store.write(Record("k", b"new"), **options)
    assert store.read("k") == [Record("k", b"old")]
    assert store.list() == ["k"]


@pytest.mark.parametrize("expiry", ["10", None, [1], float("nan")])
def test_17_bad_record_expiry_raises_and_changes_nothing(store: Store, expiry: Any) -> None:
    store.write(Record("k", b"old"))
    record = Record("k", b"new")
    record.expiry = expiry
    with pytest.raises((TypeError, ValueError)):
        store.write(record)
    assert store.read("k") == [Record("k", b"old")]


def test_17_bad_metadata_container_raises(store: Store) -> None:
    with pytest.raises(TypeError):
        store.write(Record("k", b"v", [("a", 1)]))  # type: ignore[arg-type]
    assert store.list() == []


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.list(limit="1"),
        lambda s: s.list(offset=1.0),
        lambda s: s.list(prefix=1),
        lambda s: s.list(suffix=b"x"),
        lambda s: s.list(database=1),
        lambda s: s.read("k", prefix=True, limit=None),
        lambda s: s.read(1, prefix=True),
        lambda s: s.read("k", table=1),
        lambda s: s.delete("k", database=[]),
    ],
)
def test_17_bad_query_arguments_raise(store: Store, call: Any) -> None:
    store.write(Record("k", b"v"))
    with pytest.raises(TypeError):
        call(store)
    assert store.read("k")[0].value == b"v"


def test_17_a_bad_write_in_one_table_leaves_others_alone(store: Store) -> None:
    store.write(Record("k", b"v"), table="t")
    with pytest.raises(TypeError):
        store.write(Record("k", "not bytes"), table="t")  # type: ignore[arg-type]
    assert store.read("k", table="t")[0].value == b"v"
