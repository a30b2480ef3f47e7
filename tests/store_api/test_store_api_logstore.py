"""What is specific to ``LogStore``: key and value encodings, options, the directory it
owns (locks, other processes, crashes), the default store, and the suffix index."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import store_api
from engine import CorruptionError, Engine, LockedError
from store_api import LogStore, NotFoundError, Options, Record, codec, default_dir, keys, new_store
from store_api.suffix import SuffixIndex

if TYPE_CHECKING:
    from conftest import FakeClock

ROOT = Path(__file__).resolve().parents[2]
TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from("\x00\x01\x02/é😀"))
ANY_TEXT = st.text(alphabet=st.characters() | st.sampled_from("\x00\x01\x02\ud800\udfff"))


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 60) -> str:
    """Run ``code`` in a fresh interpreter with the repository importable; return stdout."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def log_store(path: str, clock: FakeClock) -> Iterator[LogStore]:
    store = LogStore(path, clock=clock)
    yield store
    store.disconnect()


# -- key encoding -------------------------------------------------------------------------


def engine_key(database: str, table: str, key: str) -> bytes:
    return keys.encode_key(keys.namespace(database, table), key)


@settings(max_examples=300, deadline=None)
@given(
    first=st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT), second=st.tuples(ANY_TEXT, ANY_TEXT, ANY_TEXT)
)
def test_key_encoding_is_injective_and_order_preserving(
    first: tuple[str, str, str], second: tuple[str, str, str]
) -> None:
    one, two = engine_key(*first), engine_key(*second)
    assert (one == two) == (first == second)
    assert (one < two) == (first < second)


@settings(max_examples=300, deadline=None)
@given(names=st.tuples(ANY_TEXT, ANY_TEXT), key=ANY_TEXT, prefix=ANY_TEXT)
def test_key_prefix_selects_exactly_the_keys_with_that_prefix(
    names: tuple[str, str], key: str, prefix: str
) -> None:
    space = keys.namespace(*names)
    encoded = keys.encode_key(space, key)
    assert encoded.startswith(keys.key_prefix(space, prefix)) == key.startswith(prefix)
    assert keys.decode_keys(space, [encoded]) == [key]


@settings(max_examples=300, deadline=None)
@given(names=st.tuples(ANY_TEXT, ANY_TEXT), found=st.lists(ANY_TEXT, max_size=6))
def test_decode_keys_undoes_encode_key_for_a_whole_range(
    names: tuple[str, str], found: list[str]
) -> None:
    """Names that look like keys (``("x", "kx")`` and key ``"kx"``) must not confuse the split."""
    space = keys.namespace(*names)
    assert keys.decode_keys(space, [keys.encode_key(space, key) for key in found]) == found


def test_decode_keys_splits_only_between_keys() -> None:
    space = keys.namespace("x", "kx")
    found = ["kx", "kx\x00", "\x00kx", "x"]
    assert keys.decode_keys(space, [keys.encode_key(space, key) for key in found]) == found


@settings(max_examples=200, deadline=None)
@given(names=st.tuples(ANY_TEXT, ANY_TEXT), other=st.tuples(ANY_TEXT, ANY_TEXT), key=ANY_TEXT)
def test_a_table_is_one_contiguous_range(
    names: tuple[str, str], other: tuple[str, str], key: str
) -> None:
    space = keys.to_bytes(keys.namespace(*names))
    encoded = engine_key(*other, key)
    assert encoded.startswith(space) == (other == names)


def test_surrogates_and_nul_keys_round_trip(log_store: LogStore) -> None:
    odd = ["\ud800", "a\udfffb", "\x00\ud800", "\x00\x02", "\x00\x01", "\x01\x00"]
    for key in odd:
        log_store.write(Record(key, key.encode("utf-8", "surrogatepass")))
    assert log_store.list() == sorted(odd)
    for key in odd:
        assert log_store.read(key)[0].key == key
    assert log_store.list(suffix="\ud800") == ["\x00\ud800", "\ud800"]


# -- value encoding -----------------------------------------------------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    value=st.binary(max_size=64),
    metadata=st.dictionaries(st.text(max_size=5), JSON, max_size=4),
    expires_at=st.none() | st.floats(min_value=1e-3, max_value=1e12),
)
def test_codec_round_trips(
    value: bytes, metadata: dict[str, Any], expires_at: float | None
) -> None:
    meta_json = codec.encode_metadata(metadata) if metadata else None
    assert codec.decode(codec.encode(value, meta_json, expires_at)) == (value, metadata, expires_at)


def test_plain_records_cost_one_byte() -> None:
    assert codec.encode(b"value", None, None) == b"\x00value"


def test_unknown_value_flags_are_corruption() -> None:
    with pytest.raises(CorruptionError):
        codec.decode(b"\x80value")


# -- options ------------------------------------------------------------------------------


def test_options_defaults_and_merge() -> None:
    options = Options()
    assert (options.nodes, options.database, options.table, options.path) == (
        (),
        "micro",
        "micro",
        None,
    )
    merged = options.merge(table="t", segment_size=1 << 20, engine_options={"max_key_size": 99})
    assert merged.table == "t"
    assert dict(merged.engine_options) == {"segment_size": 1 << 20, "max_key_size": 99}
    assert merged.merge(database="d").engine_options == merged.engine_options
    assert Options(nodes="one").nodes == ("one",)  # type: ignore[arg-type]
    assert Options(database="").database == "micro"


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"sync": "sometimes"}, ValueError),
        ({"sync_interval": 0}, ValueError),
        ({"sync_interval": float("nan")}, ValueError),
        ({"nodes": 5}, TypeError),
        ({"nodes": [1]}, TypeError),
        ({"database": None}, TypeError),
        ({"path": 3}, TypeError),
        ({"engine_options": [1]}, TypeError),
    ],
)
def test_options_reject_bad_values(changes: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        Options().merge(**changes)


def test_options_are_immutable() -> None:
    options = Options(engine_options={"a": 1})
    with pytest.raises(TypeError):
        options.engine_options["a"] = 2  # type: ignore[index]
    assert hash(options) == hash(Options(engine_options={"b": 2}))


# -- the store itself ---------------------------------------------------------------------


def test_new_store_returns_a_log_store(path: str) -> None:
    store = new_store(path=path, table="t", sync="none")
    try:
        assert isinstance(store, LogStore)
        assert str(store) == "seglog"
        assert store.options().table == "t"
        assert store.options().path == path
    finally:
        store.disconnect()


def test_a_single_node_is_the_directory(tmp_path: Path) -> None:
    store = LogStore(nodes=(str(tmp_path / "node"),))
    try:
        store.write(Record("k", b"v"))
        assert store.options().path == str(tmp_path / "node")
        assert (tmp_path / "node").is_dir()
    finally:
        store.disconnect()
    with pytest.raises(ValueError, match="one node"):
        LogStore(nodes=("a", "b"))


def test_engine_options_reach_the_engine(path: str) -> None:
    store = LogStore(path, max_key_size=64, sync="none")
    try:
        with pytest.raises(ValueError):
            store.write(Record("k" * 100, b"v"))
        assert store.list() == []
    finally:
        store.disconnect()


def test_operations_on_a_disconnected_store_reconnect(log_store: LogStore) -> None:
    log_store.write(Record("k", b"v"))
    log_store.disconnect()
    assert not log_store.connected
    assert log_store.read("k")[0].value == b"v"
    assert log_store.connected
    for operation in (
        lambda: log_store.write(Record("k2", b"v")),
        lambda: log_store.delete("k2"),
        lambda: log_store.list(),
        lambda: log_store.read("k", prefix=True),
    ):
        log_store.disconnect()
        operation()
        assert log_store.connected


def test_disconnect_releases_the_directory(log_store: LogStore, path: str) -> None:
    log_store.write(Record("k", b"v"))
    log_store.disconnect()
    with Engine.open(path) as db:
        assert len(db) == 1
    log_store.connect()
    assert log_store.list() == ["k"]


def test_a_second_store_on_the_same_path_fails_fast(log_store: LogStore, path: str) -> None:
    with pytest.raises(LockedError, match=path):
        LogStore(path)
    log_store.disconnect()
    again = LogStore(path)
    again.disconnect()


def test_another_process_gets_a_clear_error_naming_the_path(log_store: LogStore, path: str) -> None:
    log_store.write(Record("k", b"v"))
    output = run_python(
        f"""
        from store_api import LogStore
        try:
            LogStore({path!r})
        except Exception as exc:
            print(type(exc).__name__, exc)
        else:
            print("opened")
        """,
        timeout=30,
    )
    assert output.startswith("LockedError")
    assert path in output
    log_store.disconnect()
    assert (
        run_python(
            f"""
        from store_api import LogStore
        store = LogStore({path!r})
        print(store.read("k")[0].value.decode())
        store.disconnect()
        """
        ).strip()
        == "v"
    )
    log_store.connect()


def test_init_moves_the_store_and_releases_the_old_directory(
    log_store: LogStore, tmp_path: Path, path: str
) -> None:
    log_store.write(Record("old", b"v"))
    other = str(tmp_path / "other")
    log_store.init(path=other)
    assert log_store.options().path == other
    assert log_store.list() == []
    with Engine.open(path) as db:
        assert len(db) == 1
    log_store.init(path=path)
    assert log_store.list() == ["old"]


def test_init_with_nodes_moves_the_store(log_store: LogStore, tmp_path: Path) -> None:
    log_store.write(Record("k", b"v"))
    node = str(tmp_path / "node")
    log_store.init(nodes=(node,))
    assert log_store.options().path == node
    assert log_store.list() == []
    with pytest.raises(ValueError, match="one node"):
        log_store.init(nodes=("a", "b"))
    assert log_store.options().path == node


def test_init_that_cannot_reopen_restores_the_old_options(log_store: LogStore) -> None:
    log_store.write(Record("k", b"v"))
    before = log_store.options()
    with pytest.raises(TypeError):
        log_store.init(no_such_engine_option=1)
    assert log_store.options() == before
    assert log_store.read("k")[0].value == b"v"


def test_init_changes_the_clock(log_store: LogStore, clock: FakeClock) -> None:
    log_store.write(Record("k", b"v"), ttl=10)
    later = type(clock)(clock() + 5)
    log_store.init(clock=later)
    assert log_store.read("k")[0].expiry == timedelta(seconds=5)


def test_record_expiry_that_is_not_a_duration_is_refused(log_store: LogStore) -> None:
    for expiry in (True, "5", None):
        record = Record("k", b"v", expiry=expiry)  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            log_store.write(record)
    assert log_store.list() == []


def test_not_found_error_names_key_and_namespace(log_store: LogStore) -> None:
    with pytest.raises(NotFoundError) as caught:
        log_store.read("missing", table="t")
    assert caught.value.key == "missing"
    assert "missing" in str(caught.value)
    assert "'t'" in str(caught.value)


def test_write_requires_a_record(log_store: LogStore) -> None:
    with pytest.raises(TypeError):
        log_store.write({"key": "k", "value": b"v"})  # type: ignore[arg-type]


# -- durability across processes ---------------------------------------------------------


@pytest.mark.parametrize("sync", ["periodic", "always"])
def test_acknowledged_writes_survive_sigkill(path: str, sync: str) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import os, signal
                from store_api import LogStore, Record
                store = LogStore({path!r}, sync={sync!r})
                for i in range(200):
                    store.write(Record(f"k{{i:03d}}", str(i).encode(), {{"i": i}}), table="t")
                store.delete("k000", table="t")
                print("written", flush=True)
                os.kill(os.getpid(), signal.SIGKILL)
                """
            ),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -9, result.stderr
    assert result.stdout.strip() == "written"
    store = LogStore(path)
    try:
        assert store.list(table="t") == [f"k{i:03d}" for i in range(1, 200)]
        assert store.read("k199", table="t") == [Record("k199", b"199", {"i": 199})]
    finally:
        store.disconnect()


@pytest.mark.parametrize("sync", ["always", "periodic", "none"])
def test_every_sync_mode_keeps_data_across_reopen(path: str, sync: str) -> None:
    store = LogStore(path, sync=sync)  # type: ignore[arg-type]
    store.write(Record("k", b"v", {"m": 1}), ttl=3600)
    assert store.options().sync == sync
    store.disconnect()
    again = LogStore(path)
    try:
        [record] = again.read("k")
        assert record.value == b"v"
        assert timedelta(0) < record.expiry <= timedelta(hours=1)
    finally:
        again.disconnect()


# -- the default store --------------------------------------------------------------------


def test_default_dir_prefers_seglog_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGLOG_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_dir() == str(tmp_path / "explicit")
    monkeypatch.delenv("SEGLOG_DIR")
    assert default_dir() == str(tmp_path / "xdg" / "seglog")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_dir() == str(tmp_path / "home" / ".local" / "share" / "seglog")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_dir() == str(tmp_path / "home" / ".local" / "share" / "seglog")
    assert not (tmp_path / "home").exists()


@pytest.mark.parametrize("variable", ["SEGLOG_DIR", "XDG_DATA_HOME"])
def test_default_store_is_created_on_first_call_only(tmp_path: Path, variable: str) -> None:
    base = tmp_path / "base"
    expected = base if variable == "SEGLOG_DIR" else base / "seglog"
    env = {
        "SEGLOG_DIR": "",
        "XDG_DATA_HOME": "",
        "HOME": str(tmp_path / "home"),
        variable: str(base),
    }
    output = run_python(
        f"""
        import os
        import store_api
        print(os.path.exists({str(expected)!r}))
        store = store_api.default_store()
        print(os.path.isdir({str(expected)!r}))
        print(store is store_api.default_store(), str(store), store.options().path)
        store.write(store_api.Record("k", b"v"))
        """,
        env=env,
    )
    assert output.split("\n")[:3] == ["False", "True", f"True seglog {expected}"]
    # Disconnected at exit: a new process can open it and sees the write.
    output = run_python(
        """
        import store_api
        print(store_api.default_store().read("k")[0].value.decode())
        """,
        env=env,
    )
    assert output.strip() == "v"
    assert not (tmp_path / "home").exists()


def test_a_forked_child_neither_shares_nor_releases_the_default_store(tmp_path: Path) -> None:
    env = {"SEGLOG_DIR": str(tmp_path / "d")}
    output = run_python(
        """
        import os, subprocess, sys
        import store_api
        store = store_api.default_store()
        store.write(store_api.Record("k", b"v"))
        pid = os.fork()
        if pid == 0:
            try:
                store_api.default_store()
                print("child opened", flush=True)
            except Exception as exc:
                print("child", type(exc).__name__, flush=True)
            sys.exit(0)  # runs the exit handlers inherited from the parent
        os.waitpid(pid, 0)
        probe = "import os, store_api\\ntry:\\n store_api.LogStore(os.environ['SEGLOG_DIR'])\\n"
        probe += " print('opened')\\nexcept Exception as exc:\\n print(type(exc).__name__)"
        other = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
        print("other", other.stdout.strip(), other.stderr.strip()[-200:])
        print(store.read("k")[0].value.decode())
        """,
        env=env,
    )
    assert output.split("\n")[:3] == ["child LockedError", "other LockedError ", "v"]


def test_importing_creates_nothing(tmp_path: Path) -> None:
    env = {"SEGLOG_DIR": str(tmp_path / "d"), "HOME": str(tmp_path / "home")}
    run_python("import store_api, store_api.default", env=env)
    assert not (tmp_path / "d").exists()
    assert not (tmp_path / "home").exists()


def test_public_names() -> None:
    assert set(store_api.__all__) >= {
        "Store",
        "Record",
        "Options",
        "NotFoundError",
        "LogStore",
        "new_store",
        "default_store",
    }


# -- the suffix index ---------------------------------------------------------------------


class CountingEngine:
    """An engine proxy that counts what scans hand out and what point reads ask for."""

    def __init__(self, db: Engine) -> None:
        self.db = db
        self.scanned = 0
        self.gets = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)

    def __contains__(self, key: bytes) -> bool:
        self.gets += 1
        return key in self.db

    def get(self, key: bytes) -> bytes | None:
        self.gets += 1
        return self.db.get(key)

    def _count(self, items: Iterator[Any]) -> Iterator[Any]:
        for item in items:
            self.scanned += 1
            yield item

    def scan(self, **kwargs: Any) -> Iterator[tuple[bytes, bytes]]:
        return self._count(self.db.scan(**kwargs))

    def scan_keys(self, **kwargs: Any) -> Iterator[bytes]:
        return self._count(self.db.scan_keys(**kwargs))


@pytest.fixture
def counted(log_store: LogStore) -> Iterator[CountingEngine]:
    for i in range(1000):
        log_store.write(Record(f"item/{i:04d}", b"v"))
    for i in range(50):
        log_store.write(Record(f"item/{i:04d}", b"v"), table="other")
    counter = CountingEngine(log_store._db)  # type: ignore[arg-type]
    log_store._db = counter  # type: ignore[assignment]
    yield counter
    log_store._db = counter.db


def test_prefix_queries_touch_only_their_range(
    log_store: LogStore, counted: CountingEngine
) -> None:
    assert len(log_store.list(prefix="item/05")) == 100
    assert counted.scanned == 100
    counted.scanned = 0
    assert len(log_store.read("item/012", prefix=True)) == 10
    assert counted.scanned == 10
    counted.scanned = 0
    assert len(log_store.list(table="other")) == 50
    assert counted.scanned == 50


def test_suffix_queries_scan_the_table_once_then_use_the_index(
    log_store: LogStore, counted: CountingEngine
) -> None:
    assert log_store.list(suffix="123") == ["item/0123"]
    assert counted.scanned == 1000
    counted.scanned = counted.gets = 0
    assert log_store.list(suffix="99") == [f"item/{i:04d}" for i in range(99, 1000, 100)]
    assert keys_of(log_store.read("7", suffix=True, limit=3)) == [
        "item/0007",
        "item/0017",
        "item/0027",
    ]
    assert counted.scanned == 0
    assert counted.gets == 10 + 3  # the limit stops the candidate checks early
    log_store.write(Record("new/123", b"v"))
    log_store.delete("item/0123")
    assert log_store.list(suffix="123") == ["new/123"]
    assert counted.scanned == 0


def keys_of(records: list[Record]) -> list[str]:
    return [record.key for record in records]


def test_suffix_index_keeps_up_with_concurrent_writers(log_store: LogStore) -> None:
    for i in range(200):
        log_store.write(Record(f"seed{i}.x", b"v"))
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(worker: int) -> None:
        try:
            for i in range(300):
                log_store.write(Record(f"w{worker}-{i}.x", b"v"))
                if i % 3 == 0:
                    log_store.delete(f"w{worker}-{i}.x")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def querier() -> None:
        try:
            while not stop.is_set():
                found = log_store.list(suffix=".x")
                assert found == sorted(found)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    reader = threading.Thread(target=querier)
    reader.start()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    reader.join()
    assert not errors
    expected = sorted(
        [f"seed{i}.x" for i in range(200)]
        + [f"w{w}-{i}.x" for w in range(3) for i in range(300) if i % 3]
    )
    assert log_store.list(suffix=".x") == expected
    assert log_store.list() == expected


def test_suffix_index_unit() -> None:
    index = SuffixIndex()
    index.load(["ab", "b", "cb", "ba"])
    index.note("zb")
    index.note("zb")
    assert index.matching("b") == ["ab", "b", "cb", "zb"]
    index.discard("cb")
    assert index.matching("b") == ["ab", "b", "zb"]
    assert index.matching("") == ["ab", "b", "ba", "zb"]
    assert len(index) == 4


def test_writes_with_a_suffix_index_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("store_api.suffix.PENDING_LIMIT", 10)
    index = SuffixIndex()
    for i in range(25):
        index.note(f"k{i}")
    assert len(index.pending) <= 10
    assert len(index) == 25


def test_expiry_on_the_fake_clock_reaches_the_engine(log_store: LogStore, clock: FakeClock) -> None:
    log_store.write(Record("k", b"v"), ttl=5)
    assert log_store._db is not None
    assert len(log_store._db) == 1
    clock.advance(5)
    assert len(log_store._db) == 0


def test_checkpoint_opens_as_a_store_holding_the_writes_so_far(
    log_store: LogStore, tmp_path: Path
) -> None:
    log_store.write(Record("ada", b"mathematician", {"born": 1815}))
    log_store.write(Record("grace", b"admiral"))
    log_store.disconnect()  # a checkpoint reconnects first
    report = log_store.checkpoint(tmp_path / "copy")
    log_store.write(Record("later", b"not in the copy"))
    log_store.delete("grace")
    assert report.sequence == 2
    with LogStore(tmp_path / "copy") as copy:
        assert [r.key for r in copy.read("", prefix=True)] == ["ada", "grace"]
        assert copy.read("ada")[0].metadata == {"born": 1815}


def test_a_lifetime_longer_than_a_timedelta_reads_back_as_the_longest(tmp_path: Path) -> None:
    """A ttl of 1e300 s is a finite expiry and accepted; reading it must not overflow."""
    with LogStore(tmp_path / "store", sync="none") as store:
        store.write(Record("far", b"v"), ttl=1e300)
        store.write(Record("near", b"v"), ttl=60)
        assert store.read("far")[0].expiry == timedelta.max
        assert timedelta(seconds=59) < store.read("near")[0].expiry <= timedelta(seconds=60)
        assert [r.expiry for r in store.read("f", prefix=True)] == [timedelta.max]
