"""Shared fixtures for the engine tests."""

from __future__ import annotations

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
