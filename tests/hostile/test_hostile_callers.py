"""Hostile callers (issue 17): every public method of ``Engine``, ``Batch`` and ``LogStore``
and the ``seglog`` command's arguments, driven by Hypothesis with arbitrary Python values
and sizes. Only ``TypeError``, ``ValueError``, ``KeyError`` (``NotFoundError``) or a
``StorageError`` may come out, and a call that raises changes nothing: the contents
are read back after every failed call and compared with what was there before it."""

from __future__ import annotations

import contextlib
import io
import math
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import Engine, StorageError
from engine.testing import MemoryFileSystem
from seglog_cli.main import main
from store_api import LogStore, Record

ALLOWED = (TypeError, ValueError, KeyError, StorageError)

#: Values of every kind a careless or hostile caller might pass, sizes included.
ANYTHING: st.SearchStrategy[Any] = st.deferred(
    lambda: st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**70), max_value=2**70),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 2**63, -1, 0]),
        st.text(max_size=20),
        st.binary(max_size=40),
        st.sampled_from([b"", "", b"\x00", "\x00", "\ud800", bytearray(b"k"), memoryview(b"m")]),
        st.sampled_from([bytes(70_000), "x" * 70_000, bytes((16 << 20) + 1)]),
        st.sampled_from([object(), int, len, Path("p"), timedelta(seconds=-5), datetime.now()]),
        st.lists(ANYTHING, max_size=3),
        st.dictionaries(st.text(max_size=5), ANYTHING, max_size=3),
        st.builds(Record, st.text(max_size=5), st.binary(max_size=5)),
    )
)

#: Keys of the seeded stores, often, so that a call that should not change them is
#: given the chance to.
KEYISH = st.one_of(st.sampled_from(["seed", b"seed", bytearray(b"seed")]), ANYTHING)

HOSTILE = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def call_checked(call: Callable[[], object], contents: Callable[[], object]) -> None:
    """Make ``call``; if it raises, the exception is allowed and ``contents`` is unchanged."""
    before = contents()
    try:
        result = call()
        if isinstance(result, Iterator):
            list(result)  # a scan's errors come when it is iterated
    except ALLOWED:
        assert contents() == before, "a call that raised changed the store"


# --------------------------------------------------------------------------- Engine

ENGINE_CALLS = st.sampled_from(
    [
        "put",
        "get",
        "delete",
        "get_entry",
        "scan",
        "scan_keys",
        "getitem",
        "setitem",
        "delitem",
        "contains",
        "batch",
        "checkpoint",
    ]
)
SCAN_OPTIONS = st.dictionaries(
    st.sampled_from(["prefix", "start", "end", "reverse", "limit"]), ANYTHING, max_size=3
)
PUT_OPTIONS = st.dictionaries(st.sampled_from(["ttl", "expires_at"]), ANYTHING, max_size=2)


def engine_call(db: Engine, name: str, a: Any, b: Any, options: dict[str, Any]) -> object:
    if name == "put":
        return db.put(a, b, **{k: v for k, v in options.items() if k in ("ttl", "expires_at")})
    if name in ("scan", "scan_keys"):
        return getattr(db, name)(**options)
    if name == "getitem":
        return db[a]
    if name == "setitem":
        db[a] = b
        return None
    if name == "delitem":
        del db[a]
        return None
    if name == "contains":
        return a in db
    if name == "batch":
        with db.batch() as batch:
            batch.put(a, b)
            batch.delete(b)
        return None
    if name == "checkpoint":
        return db.checkpoint(a)
    return getattr(db, name)(a)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    db = Engine.open("/hostile", fs=MemoryFileSystem(), auto_compact=False, max_value_size=1 << 16)
    db.put(b"seed", b"value")
    yield db
    db.close()


@HOSTILE
@given(ENGINE_CALLS, KEYISH, KEYISH, st.one_of(SCAN_OPTIONS, PUT_OPTIONS), st.booleans())
def test_engine_takes_anything(
    engine: Engine, name: str, a: Any, b: Any, options: dict[str, Any], bytes_key: bool
) -> None:
    if bytes_key and name in ("put", "setitem", "batch"):
        a = b"k" + bytes(str(a)[:10], "utf-8", "surrogatepass")  # a valid key, hostile rest
    if name == "checkpoint" and isinstance(a, str | Path):
        a = "/hostile-copies/" + str(a)  # never a path on the real disk

    def contents() -> dict[bytes, bytes]:
        return dict(engine.scan())

    call_checked(lambda: engine_call(engine, name, a, b, options), contents)
    assert not engine.stats()["failed"]


# --------------------------------------------------------------------------- LogStore

STORE_OPTIONS = st.dictionaries(
    st.sampled_from(["database", "table", "prefix", "suffix", "limit", "offset", "expiry", "ttl"]),
    ANYTHING,
    max_size=3,
)


def store_call(store: LogStore, name: str, a: Any, options: dict[str, Any]) -> object:
    names = {k: v for k, v in options.items() if k in ("database", "table")}
    if name == "read":
        keep = ("database", "table", "prefix", "suffix", "limit", "offset")
        return store.read(a, **{k: v for k, v in options.items() if k in keep})
    if name == "write":
        record = a if isinstance(a, Record) else Record("k", b"v")
        if not isinstance(a, Record):
            record.key, record.value = a, options.get("prefix", b"v")  # hostile fields
        keep = ("database", "table", "expiry", "ttl")
        return store.write(record, **{k: v for k, v in options.items() if k in keep})
    if name == "delete":
        return store.delete(a, **names)
    if name == "list":
        keep = ("database", "table", "prefix", "suffix", "limit", "offset")
        return store.list(**{k: v for k, v in options.items() if k in keep})
    if name == "write_many":
        return store.write_many([a] if isinstance(a, Record) else a, **names)
    return store.init(**{k: v for k, v in options.items() if k in ("database", "table")})


@pytest.fixture(scope="module")
def log_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogStore]:
    store = LogStore(tmp_path_factory.mktemp("hostile") / "store", sync="none")
    store.write(Record("seed", b"value", {"m": 1}))
    yield store
    store.disconnect()


@HOSTILE
@given(
    st.sampled_from(["read", "write", "delete", "list", "write_many", "init"]),
    KEYISH,
    STORE_OPTIONS,
)
def test_logstore_takes_anything(
    log_store: LogStore, name: str, a: Any, options: dict[str, Any]
) -> None:
    defaults = log_store.options()

    def contents() -> list[tuple[str, str, list[Record]]]:
        return [
            (database, table, list(log_store.records(database=database, table=table)))
            for database, table in log_store.namespaces()
        ]

    call_checked(lambda: store_call(log_store, name, a, options), contents)
    log_store.init(database=defaults.database, table=defaults.table)


# --------------------------------------------------------------------------- the command

COMMANDS = ["stats", "verify", "get", "put", "delete", "list", "dump", "compact", "repair"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(COMMANDS),
    st.lists(
        st.one_of(
            st.text(max_size=12).filter(lambda s: "\x00" not in s),
            st.sampled_from(["--json", "--database", "--table", "-1", "--limit", "--", "-"]),
        ),
        max_size=4,
    ),
)
def test_the_command_takes_any_arguments(
    tmp_path_factory: pytest.TempPathFactory, command: str, args: list[str]
) -> None:
    store = tmp_path_factory.mktemp("cli") / "store"
    with LogStore(store) as seeded:
        seeded.write(Record("seed", b"value"))

    def contents() -> list[Record]:
        with LogStore(store) as reader:
            return list(reader.records())

    before = contents()
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([command, str(store), *args])
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code if isinstance(exc.code, int) else 2
    assert isinstance(code, int) and 0 <= code < 128, err.getvalue()
    assert "Traceback" not in err.getvalue()
    if code != 0:
        assert contents() == before, f"seglog {command} {args} failed with {code} but wrote"
