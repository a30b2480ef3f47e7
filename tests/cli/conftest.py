"""Fixtures for the ``seglog`` command tests: a runner and stores healthy, damaged and held.

Every command runs in a subprocess (``python -m seglog_cli.main``), exactly as
an operator would run it, so exit statuses, stdout and stderr are the real ones.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Engine

ROOT = Path(__file__).resolve().parents[2]
#: Small segments, so that a few hundred records fill several sealed segments.
SEGMENT_SIZE = 2048


class Result:
    """A finished ``seglog`` run."""

    def __init__(self, done: subprocess.CompletedProcess[bytes]) -> None:
        self.status = done.returncode
        self.stdout = done.stdout
        self.out = done.stdout.decode(errors="replace")
        self.err = done.stderr.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.out.splitlines()]


Cli = Callable[..., Result]


@pytest.fixture
def cli() -> Cli:
    """Run ``seglog ARGS...`` (bytes on stdin optional) and return its ``Result``."""

    def run(*args: str | Path, stdin: bytes = b"") -> Result:
        command = [sys.executable, "-m", "seglog_cli.main", *map(str, args)]
        done = subprocess.run(command, input=stdin, capture_output=True, cwd=ROOT, timeout=120)
        return Result(done)

    return run


def _fill(path: Path) -> dict[bytes, bytes]:
    """Write a known mix into a new store at ``path``; return what it should hold."""
    expected: dict[bytes, bytes] = {}
    with Engine.open(path, segment_size=SEGMENT_SIZE) as db:
        for i in range(200):
            key, value = b"key%03d" % i, b"value %d" % i
            db.put(key, value)
            expected[key] = value
        for i in range(0, 200, 10):
            db.delete(b"key%03d" % i)
            del expected[b"key%03d" % i]
        with db.batch() as batch:
            batch.put(b"batch-a", b"A")
            batch.put(b"batch-b", b"B")
        expected |= {b"batch-a": b"A", b"batch-b": b"B"}
        db.put(b"gone", b"soon", ttl=-1)
        db.put(b"bin\xff\x00key", b"\x00\x01\xfe")
        expected[b"bin\xff\x00key"] = b"\x00\x01\xfe"
    return expected


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A healthy, closed store of several segments."""
    path = tmp_path / "store"
    _fill(path)
    return path


@pytest.fixture
def expected(store: Path) -> dict[bytes, bytes]:
    """What ``store`` holds (it is rebuilt the same way, into a scratch directory)."""
    return _fill(store.parent / "scratch")


@pytest.fixture
def flip() -> Callable[[Path, int], None]:
    """Overwrite two bytes of a file at an offset."""

    def damage(file: Path, offset: int) -> None:
        with file.open("r+b") as f:
            f.seek(offset)
            old = f.read(2)
            f.seek(offset)
            f.write(bytes(b ^ 0xFF for b in old))

    return damage


@pytest.fixture
def held(store: Path) -> Iterator[Path]:
    """``store``, open in another live process for the duration of the test."""
    holder = (
        "import sys\nfrom engine import Engine\n"
        "db = Engine.open(sys.argv[1])\nprint('ready', flush=True)\nsys.stdin.read()\ndb.close()\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder, str(store)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline() == b"ready\n"
    yield store
    process.stdin.close()
    process.wait(timeout=30)
