"""Every installed store, in every sync mode it offers, behaves as a key-value store.

These check the adapters, not the stores' speed: tiny data, no timings.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from benchmarks.adapters import adapter_class, store_names
from benchmarks.adapters.base import SYNC_MODES, Adapter, Level, SyncMode, prefix_upper_bound

CASES = [(name, mode) for name in store_names() for mode in SYNC_MODES]


def _open(name: str, mode: SyncMode, path: Path) -> Adapter:
    cls = adapter_class(name)
    reason = cls.missing()
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
    if cls.durability(mode) is None:
        pytest.skip(f"{name} cannot offer sync={mode}")
    db = cls(str(path / name), mode)
    db.open()
    return db


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_put_get_delete_scan_reopen(name: str, mode: SyncMode, tmp_path: Path) -> None:
    db = _open(name, mode, tmp_path)
    keys = [db.key(b"key:%012d" % i) for i in range(250)]
    for i, key in enumerate(keys):
        db.put(key, b"v%d" % i)
    db.put(keys[3], b"again")
    assert db.get(keys[3]) == b"again"
    assert db.get(keys[7]) == b"v7"
    assert db.get(db.key(b"key:missing")) is None
    db.delete(keys[7])
    assert db.get(keys[7]) is None
    if db.ordered:
        assert db.scan_prefix(b"key:0000000001") == 100
        assert db.scan_prefix(b"key:0000000000") == 99  # key 7 is gone
        assert db.scan_prefix(b"nope") == 0
    else:
        with pytest.raises(NotImplementedError):
            db.scan_prefix(b"key:")
    db.sync()
    db.close()
    db.open()
    assert db.get(keys[3]) == b"again"
    assert db.get(keys[7]) is None
    assert db.get(keys[249]) == b"v249"
    db.close()


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_locked_put_from_threads(name: str, mode: SyncMode, tmp_path: Path) -> None:
    db = _open(name, mode, tmp_path)
    put = db.locked()

    def writer(t: int) -> None:
        for i in range(50):
            put(db.key(b"t%d:%03d" % (t, i)), b"x")

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(db.get(db.key(b"t%d:%03d" % (t, i))) == b"x" for t in range(4) for i in range(50))
    db.close()


def test_every_store_declares_every_mode() -> None:
    for name in store_names():
        cls = adapter_class(name)
        for mode in SYNC_MODES:
            d = cls.durability(mode)
            assert d is None or (isinstance(d.level, Level) and d.how)


def test_seglog_matches_itself() -> None:
    for name in ("seglog", "seglog-store"):
        cls = adapter_class(name)
        for mode in SYNC_MODES:
            d = cls.durability(mode)
            assert d is not None and d.level is Level.MATCH


def test_prefix_upper_bound() -> None:
    assert prefix_upper_bound(b"ab") == b"ac"
    assert prefix_upper_bound(b"a\xff") == b"b"
    assert prefix_upper_bound(b"\xff\xff") is None
    assert prefix_upper_bound(b"") is None
