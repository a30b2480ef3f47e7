"""Micro-benchmarks of seglog's inner loops, for pytest-benchmark.

Not part of the normal ``pytest`` run (testpaths is ``tests``). Run them with::

    .venv/bin/pytest benchmarks/micro --benchmark-only

Each benchmarked call does ``OPS`` operations, so the timer's own overhead is
small; divide the reported times by ``OPS`` (1000) for the cost of one operation
(``extra_info["ops_per_call"]`` says so in saved JSON). To compare two commits,
see docs/BENCHMARKS.md or ``python -m benchmarks.compare BASE [HEAD]``.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from engine.format import RecordType, decode_record_at, encode_record

OPS = 1000
KEYS = 10_000
VALUE = bytes(range(100))


def _keys(n: int) -> list[bytes]:
    return [b"key:%012d" % i for i in range(n)]


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Any]:
    """An engine holding KEYS keys with 100-byte values (sync="none")."""
    db = Engine.open(tmp_path / "db", sync="none")
    for key in _keys(KEYS):
        db.put(key, VALUE)
    db.sync()
    yield db
    db.close()


def _ops(benchmark: Any) -> None:
    benchmark.extra_info["ops_per_call"] = OPS


# -- codec -------------------------------------------------------------------------


def test_codec_encode(benchmark: Any) -> None:
    _ops(benchmark)
    keys = _keys(OPS)

    def encode() -> None:
        for seq, key in enumerate(keys):
            encode_record(RecordType.PUT, seq, 0.0, key, VALUE)

    benchmark(encode)


def test_codec_decode(benchmark: Any) -> None:
    _ops(benchmark)
    frames = [encode_record(RecordType.PUT, seq, 0.0, k, VALUE) for seq, k in enumerate(_keys(OPS))]
    blob = b"".join(frames)
    offsets = list(itertools.accumulate((len(f) for f in frames[:-1]), initial=0))

    def decode() -> None:
        for offset in offsets:
            decode_record_at(blob, offset)

    benchmark(decode)


# -- put / get / scan ------------------------------------------------------------------


@pytest.mark.parametrize("sync", ["none", "periodic"])
def test_put_new_keys(benchmark: Any, tmp_path: Path, sync: str) -> None:
    _ops(benchmark)
    db = Engine.open(tmp_path / "db", sync=sync)  # type: ignore[arg-type]
    counter = itertools.count()

    def put() -> None:
        base = next(counter) * OPS
        for i in range(base, base + OPS):
            db.put(b"key:%012d" % i, VALUE)

    benchmark(put)
    db.close()


def test_put_overwrite(benchmark: Any, filled: Any) -> None:
    _ops(benchmark)
    keys = random.Random(1).sample(_keys(KEYS), OPS)
    put = filled.put

    def overwrite() -> None:
        for key in keys:
            put(key, VALUE)

    benchmark(overwrite)


def test_get_random(benchmark: Any, filled: Any) -> None:
    _ops(benchmark)
    keys = random.Random(2).sample(_keys(KEYS), OPS)
    get = filled.get

    def read() -> None:
        for key in keys:
            get(key)

    benchmark(read)


def test_get_missing(benchmark: Any, filled: Any) -> None:
    _ops(benchmark)
    keys = [b"nokey:%d" % i for i in range(OPS)]
    get = filled.get

    def read() -> None:
        for key in keys:
            get(key)

    benchmark(read)


def test_scan_prefix_100(benchmark: Any, filled: Any) -> None:
    """Ten 100-key prefix scans per call: OPS keys read."""
    _ops(benchmark)
    prefixes = [b"key:%010d" % g for g in random.Random(3).sample(range(KEYS // 100), 10)]

    def scan() -> None:
        for prefix in prefixes:
            for _ in filled.scan(prefix=prefix):
                pass

    benchmark(scan)


def test_scan_keys_full(benchmark: Any, filled: Any) -> None:
    """Every key, without values: per call KEYS keys (extra_info says so)."""
    benchmark.extra_info["ops_per_call"] = KEYS
    benchmark(lambda: sum(1 for _ in filled.scan_keys()))


# -- recovery ----------------------------------------------------------------------


def test_recovery_per_record(benchmark: Any, tmp_path: Path) -> None:
    """Open (full recovery) of KEYS records; per record = time / KEYS."""
    benchmark.extra_info["ops_per_call"] = KEYS
    path = tmp_path / "db"
    db = Engine.open(path, sync="none")
    for key in _keys(KEYS):
        db.put(key, VALUE)
    db.close()

    def reopen() -> None:
        Engine.open(path, sync="none").close()

    benchmark.pedantic(reopen, rounds=10, warmup_rounds=1)
