"""``engine.dbm``: the standard library's ``dbm`` interface, flag by flag and method by method.

The model test runs the same operations on ``dbm.dumb`` (the pure-Python
``dbm`` every CPython has) and on ``engine.dbm``, and compares every answer.
"""

from __future__ import annotations

import dbm
import dbm.dumb
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import dbm as seglog_dbm

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def path(tmp_path: Path) -> str:
    return os.fspath(tmp_path / "db")


def test_create_write_reopen_read(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        db["text"] = "värde"
        db[b"bytes"] = b"\x00\xff"
        db[bytearray(b"ba")] = memoryview(b"mv")
    with seglog_dbm.open(path, "r") as db:
        assert db[b"text"] == "värde".encode()
        assert db["text"] == "värde".encode()  # str keys are their UTF-8 bytes
        assert db["bytes"] == b"\x00\xff"
        assert db[b"ba"] == b"mv"
        assert db.keys() == [b"ba", b"bytes", b"text"]
        assert list(db) == [b"ba", b"bytes", b"text"]
        assert len(db) == 3
        assert "text" in db and b"text" in db and "missing" not in db
        assert 42 not in db


def test_mapping_methods(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        assert db.get("k") is None
        assert db.get("k", b"default") == b"default"
        assert db.setdefault("k", "first") == "first"  # the default as given, as dbm returns it
        assert db.setdefault("k", "second") == b"first"
        assert db.setdefault("empty") == b""
        assert db["k"] == b"first"
        del db["k"]
        with pytest.raises(KeyError):
            db["k"]
        with pytest.raises(KeyError):
            del db["k"]
        db.update({"a": "1", "b": "2"})
        assert dict(db.items()) == {b"a": b"1", b"b": b"2", b"empty": b""}
        assert db.pop("a") == b"1"
        db.clear()
        assert len(db) == 0 and db.keys() == []
        db.sync()


def test_read_only_refuses_every_write_and_changes_nothing(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        db["k"] = "v"
    with seglog_dbm.open(path, "r") as db:
        for write in (
            lambda: db.__setitem__("k", "w"),
            lambda: db.__setitem__("new", "w"),
            lambda: db.__delitem__("k"),
            lambda: db.setdefault("new", "w"),
            db.clear,
        ):
            with pytest.raises(seglog_dbm.error, match="reading only"):
                write()
        assert db.setdefault("k", "ignored") == b"v"  # reading a present key is fine
        assert db.keys() == [b"k"] and db["k"] == b"v"
    with seglog_dbm.open(path, "r") as db:
        assert dict(db.items()) == {b"k": b"v"}


@pytest.mark.parametrize("flag", ["r", "w"])
def test_r_and_w_need_an_existing_store(path: str, flag: Any) -> None:
    with pytest.raises(seglog_dbm.error, match="'c' or 'n'"):
        seglog_dbm.open(path, flag)
    assert not os.path.exists(path)
    with pytest.raises(dbm.error):  # the standard tuple catches it, as for every dbm module
        seglog_dbm.open(path, flag)


def test_w_writes_to_an_existing_store(path: str) -> None:
    seglog_dbm.open(path, "c").close()
    with seglog_dbm.open(path, "w") as db:
        db["k"] = "v"
    with seglog_dbm.open(path) as db:  # "r" is the default, as for dbm.open
        assert db["k"] == b"v"


def test_c_keeps_existing_data_and_n_always_starts_empty(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        for i in range(100):
            db[f"k{i}"] = "x" * 100
    with seglog_dbm.open(path, "c") as db:
        assert len(db) == 100
    with seglog_dbm.open(path, "n") as db:
        assert len(db) == 0 and db.keys() == []
        db["fresh"] = "1"
    with seglog_dbm.open(path, "r") as db:
        assert db.keys() == [b"fresh"]
    with seglog_dbm.open(os.path.join(path, "new"), "n") as db:  # "n" also creates
        assert len(db) == 0


def test_n_reclaims_the_old_data_on_disk(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        for i in range(200):
            db[f"k{i}"] = os.urandom(1000)
    before = sum(f.stat().st_size for f in Path(path).iterdir())
    seglog_dbm.open(path, "n").close()
    after = sum(f.stat().st_size for f in Path(path).iterdir())
    assert after < before - 150_000


@pytest.mark.parametrize("flag", ["c", "n"])
def test_c_and_n_refuse_what_is_not_a_seglog_store(tmp_path: Path, flag: Any) -> None:
    afile = tmp_path / "file"
    afile.write_bytes(b"precious")
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("precious")
    for target in (afile, other):
        with pytest.raises(seglog_dbm.error, match="not a seglog store"):
            seglog_dbm.open(target, flag)
    assert afile.read_bytes() == b"precious"
    assert os.listdir(other) == ["notes.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    seglog_dbm.open(empty, flag).close()  # an existing empty directory is fine


def test_bad_flag_and_mode(path: str) -> None:
    with pytest.raises(ValueError, match="flag"):
        seglog_dbm.open(path, "x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="mode"):
        seglog_dbm.open(path, "c", "0o666")  # type: ignore[arg-type]
    assert not os.path.exists(path)


def test_mode_guards_the_directory(path: str) -> None:
    umask = os.umask(0o022)
    try:
        seglog_dbm.open(path, "c", 0o600).close()
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
        other = path + "-2"
        seglog_dbm.open(other, "n", 0o664).close()
        assert stat.S_IMODE(os.stat(other).st_mode) == 0o775 & ~0o022
    finally:
        os.umask(umask)


@pytest.mark.parametrize("bad", [1, 1.5, None, ["k"]])
def test_bad_keys_and_values_raise_type_error_and_write_nothing(path: str, bad: Any) -> None:
    with seglog_dbm.open(path, "c") as db:
        with pytest.raises(TypeError, match="keys must be bytes or strings"):
            db[bad] = "v"
        with pytest.raises(TypeError, match="values must be bytes or strings"):
            db["k"] = bad
        with pytest.raises(TypeError):
            db[bad]
        assert len(db) == 0


def test_empty_key_is_refused_clearly(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        for call in (lambda: db.__setitem__("", "v"), lambda: db[b""], lambda: db.get("")):
            with pytest.raises(ValueError, match="empty"):
                call()
        assert len(db) == 0


def test_closed_database_raises_error(path: str) -> None:
    db = seglog_dbm.open(path, "c")
    db["k"] = "v"
    db.close()
    db.close()  # twice is harmless
    for call in (lambda: db["k"], lambda: db.__setitem__("k", "v"), db.keys, lambda: len(db)):
        with pytest.raises(seglog_dbm.error, match="closed"):
            call()
    assert "closed" in repr(db)


def test_a_held_store_gives_error_and_n_wipes_nothing(path: str) -> None:
    with seglog_dbm.open(path, "c") as db:
        db["k"] = "v"
        for flag in ("r", "w", "c", "n"):
            with pytest.raises(seglog_dbm.error, match="cannot open"):
                seglog_dbm.open(path, flag)  # type: ignore[arg-type]
        assert db["k"] == b"v"
    child = textwrap.dedent(
        f"""
        import sys
        from engine import dbm
        db = dbm.open({path!r}, "w")
        print("open", flush=True)
        sys.stdin.read()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", child],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(seglog_dbm.error, match=path):
            seglog_dbm.open(path, "n")
    finally:
        holder.communicate("", timeout=60)
    with seglog_dbm.open(path, "r") as db:
        assert db["k"] == b"v"


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "get", "setdefault", "in"]),
        st.sampled_from(["a", "b", "ab", "é", "\x00"]) | st.binary(min_size=1, max_size=2),
        st.sampled_from(["", "1", "värde"]) | st.binary(max_size=3),
    ),
    max_size=30,
)


def apply(db: Any, op: str, key: str | bytes, value: str | bytes) -> object:
    """One operation; its answer (or the exception type) to compare across dbm modules."""
    try:
        if op == "set":
            db[key] = value
            return None
        if op == "del":
            del db[key]
            return None
        if op == "get":
            return db.get(key)
        if op == "setdefault":
            return db.setdefault(key, value)
        return key in db
    except KeyError:
        return KeyError


@settings(max_examples=60, deadline=None)
@given(ops=OPS)
def test_answers_like_dbm_dumb(tmp_path_factory: pytest.TempPathFactory, ops: Any) -> None:
    root = tmp_path_factory.mktemp("pair")
    with (
        dbm.dumb.open(os.fspath(root / "dumb"), "n") as dumb,
        seglog_dbm.open(root / "seglog", "n") as ours,
    ):
        for op, key, value in ops:
            assert apply(ours, op, key, value) == apply(dumb, op, key, value), (op, key, value)
        assert ours.keys() == sorted(dumb.keys())
        assert {key: ours[key] for key in ours} == {key: dumb[key] for key in dumb}
        assert len(ours) == len(dumb)
