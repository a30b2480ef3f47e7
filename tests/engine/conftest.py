"""Shared fixtures for the engine tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine import Engine


class FakeClock:
    """A clock the tests move by hand, so expiry never depends on real time."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def db(store_dir: Path, clock: FakeClock) -> Iterator[Engine]:
    engine = Engine.open(store_dir, clock=clock, segment_size=4096)
    yield engine
    engine.close()


def mount_tmpfs(where: Path, *options: str) -> None:
    """Mount a real tmpfs at ``where`` (needs root and mount rights; skipped without them:
    the same behaviour is tested on the in-memory file system everywhere)."""
    where.mkdir(exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", ",".join(options), "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 3 MiB tmpfs, unmounted afterwards."""
    where = tmp_path / "tmpfs"
    mount_tmpfs(where, "size=3m")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)
