"""``shelve`` on seglog: real pickled objects, reopening, writeback, and a SIGKILLed writer."""

from __future__ import annotations

import os
import shelve
import signal
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from engine import dbm as seglog_dbm

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Account:
    """A user-defined class, pickled by reference to this module."""

    owner: str
    balance: Decimal
    tags: set[str] = field(default_factory=set)
    opened: datetime = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)


def sample_objects() -> dict[str, object]:
    shared = [1, 2, 3]
    return {
        "account": Account("ada", Decimal("12.50"), {"gold", "early"}),
        "nested": {"list": [1, 2.5, None, True], "tuple": (1, "two"), "bytes": b"\x00\xff"},
        "shared": {"a": shared, "b": shared},  # one list referenced twice stays one list
        "numbers": [2**100, -0.0, float("inf"), Fraction(1, 3), complex(1, -2)],
        "text": "日本語 and 😀",
        "empty": {},
        "frozen": frozenset({1, 2}),
        "big": list(range(50_000)),
    }


def test_pickled_objects_round_trip_and_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "shelf"
    objects = sample_objects()
    with shelve.Shelf(seglog_dbm.open(path, "c")) as shelf:
        for key, value in objects.items():
            shelf[key] = value
        assert shelf["account"] == objects["account"]
    with shelve.Shelf(seglog_dbm.open(path, "r")) as shelf:
        assert sorted(shelf) == sorted(objects)
        assert len(shelf) == len(objects)
        for key, value in objects.items():
            assert shelf[key] == value
        shared = shelf["shared"]
        assert shared["a"] is shared["b"]
        assert isinstance(shelf["account"], Account)
        assert shelf["account"].tags == {"gold", "early"}
        assert "account" in shelf and "nobody" not in shelf
        assert shelf.get("nobody", "default") == "default"


def test_updates_and_deletes_through_the_shelf(tmp_path: Path) -> None:
    path = tmp_path / "shelf"
    with shelve.Shelf(seglog_dbm.open(path, "c")) as shelf:
        shelf["counter"] = 0
        for _ in range(10):
            shelf["counter"] += 1
        shelf["gone"] = [1]
        del shelf["gone"]
        with pytest.raises(KeyError):
            del shelf["gone"]
    with shelve.Shelf(seglog_dbm.open(path, "w")) as shelf:
        assert dict(shelf) == {"counter": 10}


def test_writeback_caches_mutations_until_sync_and_close(tmp_path: Path) -> None:
    path = tmp_path / "shelf"
    with shelve.Shelf(seglog_dbm.open(path, "c"), writeback=True) as shelf:
        shelf["log"] = []
        shelf["log"].append("first")  # a mutation of the cached object
        shelf.sync()
        shelf["log"].append("second")
    with shelve.Shelf(seglog_dbm.open(path, "r")) as shelf:
        assert shelf["log"] == ["first", "second"]


def test_read_only_shelf_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "shelf"
    with shelve.Shelf(seglog_dbm.open(path, "c")) as shelf:
        shelf["k"] = {"v": 1}
    with shelve.Shelf(seglog_dbm.open(path, "r")) as shelf:
        with pytest.raises(seglog_dbm.error):
            shelf["k"] = {"v": 2}
        assert shelf["k"] == {"v": 1}


WRITER = """
import sys
import shelve
from engine import dbm
shelf = shelve.Shelf(dbm.open(sys.argv[1], "c"))
i = 0
while True:
    shelf[f"item-{{i:06d}}"] = {{"i": i, "payload": [i] * (i % 50), "name": "n" * (i % 7)}}
    if i % 3 == 0 and i:
        del shelf[f"item-{{i - 1:06d}}"]
    print(i, flush=True)
    i += 1
"""


def writes_of_step(i: int) -> list[tuple[str, dict[str, object] | None]]:
    """The shelf writes the writer makes in step ``i``, in order (None deletes)."""
    writes: list[tuple[str, dict[str, object] | None]] = [
        (f"item-{i:06d}", {"i": i, "payload": [i] * (i % 50), "name": "n" * (i % 7)})
    ]
    if i % 3 == 0 and i:
        writes.append((f"item-{i - 1:06d}", None))
    return writes


def possible_states(acknowledged: int) -> list[dict[str, dict[str, object]]]:
    """The contents after steps 0..acknowledged, plus any prefix of the step in flight."""
    contents: dict[str, dict[str, object]] = {}

    def apply(key: str, value: dict[str, object] | None) -> None:
        if value is None:
            contents.pop(key, None)
        else:
            contents[key] = value

    for i in range(acknowledged + 1):
        for key, value in writes_of_step(i):
            apply(key, value)
    states = [dict(contents)]
    for key, value in writes_of_step(acknowledged + 1):
        apply(key, value)
        states.append(dict(contents))
    return states


@pytest.mark.parametrize("sync", ["periodic", "always"])
def test_sigkilled_writer_loses_no_acknowledged_entry(tmp_path: Path, sync: str) -> None:
    path = os.fspath(tmp_path / "shelf")
    writer = textwrap.dedent(WRITER.format()).replace('"c")', f'"c", sync={sync!r})')
    child = subprocess.Popen(
        [sys.executable, "-c", writer, path],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    last = -1
    try:
        for line in child.stdout:
            last = int(line)
            if last >= 400:
                break
        child.send_signal(signal.SIGKILL)  # mid-write: the child never stops on its own
        rest = child.stdout.read()
    finally:
        child.kill()
        child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL
    acknowledged = max([last, *(int(line) for line in rest.split())])
    assert acknowledged >= 400
    with shelve.Shelf(seglog_dbm.open(path, "r")) as shelf:
        found = dict(shelf)
    # Every acknowledged write is there, whole; of the step in flight, at most a prefix.
    assert found in possible_states(acknowledged)
