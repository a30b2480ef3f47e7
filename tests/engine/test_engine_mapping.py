"""``Engine``'s mapping protocol: ``[]``, ``del``, ``in``, ``len`` and iteration in key order."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FakeClock
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Engine


def test_subscripts_read_write_and_delete(db: Engine) -> None:
    db[b"a"] = b"1"
    db[b"b"] = bytearray(b"2")
    assert db[b"a"] == b"1"
    assert db[b"b"] == b"2"
    assert db.get(b"b") == b"2"
    db[b"a"] = b"one"
    assert db[b"a"] == b"one"
    del db[b"a"]
    assert b"a" not in db
    assert db.get(b"a") is None


def test_missing_keys_raise_key_error_like_dict(db: Engine) -> None:
    with pytest.raises(KeyError) as read:
        db[b"missing"]
    assert read.value.args == (b"missing",)
    with pytest.raises(KeyError):
        del db[b"missing"]
    db[b"k"] = b"v"
    del db[b"k"]
    with pytest.raises(KeyError):
        del db[b"k"]  # deleting twice, as with dict


def test_expired_keys_are_missing(db: Engine, clock: FakeClock) -> None:
    db.put(b"k", b"v", ttl=10)
    assert db[b"k"] == b"v"
    clock.advance(10)
    with pytest.raises(KeyError):
        db[b"k"]
    with pytest.raises(KeyError):
        del db[b"k"]
    assert list(db) == []


def test_setitem_clears_an_expiry(db: Engine, clock: FakeClock) -> None:
    db.put(b"k", b"v", ttl=10)
    db[b"k"] = b"w"
    clock.advance(100)
    assert db[b"k"] == b"w"


def test_iteration_is_in_key_order_and_a_snapshot(db: Engine) -> None:
    for key in (b"b", b"a", b"c\x00", b"c", b"\xff", b"\x00"):
        db[key] = key
    keys: Iterator[bytes] = iter(db)
    db[b"z"] = b"late"  # writing while iterating is safe and unseen
    del db[b"a"]
    assert list(keys) == [b"\x00", b"a", b"b", b"c", b"c\x00", b"\xff"]
    assert list(db) == [b"\x00", b"b", b"c", b"c\x00", b"z", b"\xff"]
    assert sorted(db) == list(db)
    assert dict.fromkeys(db).keys() == set(db)


@pytest.mark.parametrize("key", ["text", 1, None, 1.5])
def test_bad_keys_raise_type_error_and_change_nothing(db: Engine, key: Any) -> None:
    db[b"k"] = b"v"
    for action in (
        lambda: db[key],
        lambda: db.__setitem__(key, b"v"),
        lambda: db.__delitem__(key),
    ):
        with pytest.raises(TypeError):
            action()
    with pytest.raises(TypeError):
        db[b"k"] = "not bytes"  # type: ignore[assignment]
    assert list(db) == [b"k"]
    assert db[b"k"] == b"v"


def test_empty_key_is_refused_like_by_put_get_and_delete(db: Engine) -> None:
    with pytest.raises(ValueError):
        db[b""] = b"v"
    with pytest.raises(ValueError):
        db[b""]
    with pytest.raises(ValueError):
        del db[b""]
    assert len(db) == 0


def test_mapping_writes_survive_reopen(store_dir: Path) -> None:
    with Engine.open(store_dir) as db:
        db[b"a"] = b"1"
        db[b"b"] = b"2"
        del db[b"a"]
    with Engine.open(store_dir) as db:
        assert list(db) == [b"b"]
        assert db[b"b"] == b"2"


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.binary(min_size=1, max_size=3), st.binary(max_size=4)),
        max_size=40,
    )
)
def test_behaves_like_a_dict_of_bytes(tmp_path_factory: pytest.TempPathFactory, ops: Any) -> None:
    model: dict[bytes, bytes] = {}
    with Engine.open(tmp_path_factory.mktemp("db")) as db:
        for is_delete, key, value in ops:
            if is_delete:
                expected = key in model
                model.pop(key, None)
                try:
                    del db[key]
                    deleted = True
                except KeyError:
                    deleted = False
                assert deleted == expected
            else:
                model[key] = value
                db[key] = value
        assert list(db) == sorted(model)
        assert {key: db[key] for key in db} == model
        assert len(db) == len(model)
