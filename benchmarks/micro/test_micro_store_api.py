"""Micro-benchmarks of ``store_api.LogStore`` over the engine (see test_micro_engine.py)."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from store_api import LogStore, Record

OPS = 1000
KEYS = 10_000
VALUE = bytes(range(100))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Any]:
    s = LogStore(str(tmp_path / "store"), sync="none")
    for i in range(KEYS):
        s.write(Record(key=f"key:{i:012d}", value=VALUE))
    yield s
    s.disconnect()


def test_logstore_write(benchmark: Any, tmp_path: Path) -> None:
    benchmark.extra_info["ops_per_call"] = OPS
    s = LogStore(str(tmp_path / "w"), sync="none")
    counter = itertools.count()

    def write() -> None:
        base = next(counter) * OPS
        for i in range(base, base + OPS):
            s.write(Record(key=f"key:{i:012d}", value=VALUE))

    benchmark(write)
    s.disconnect()


def test_logstore_read(benchmark: Any, store: Any) -> None:
    benchmark.extra_info["ops_per_call"] = OPS
    keys = [f"key:{i:012d}" for i in random.Random(2).sample(range(KEYS), OPS)]

    def read() -> None:
        for key in keys:
            store.read(key)

    benchmark(read)


def test_logstore_list_prefix(benchmark: Any, store: Any) -> None:
    """Ten 100-key prefix reads (records with values) per call."""
    benchmark.extra_info["ops_per_call"] = OPS
    prefixes = [f"key:{g:010d}" for g in random.Random(3).sample(range(KEYS // 100), 10)]

    def scan() -> None:
        for prefix in prefixes:
            store.read(prefix, prefix=True)

    benchmark(scan)
