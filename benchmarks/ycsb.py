"""YCSB's core workloads A-F: operation mixes, request distributions and keys.

The facts come from YCSB's ``workloads/workload[a-f]`` files and ``CoreWorkload``
(github.com/brianfrankcooper/YCSB); the code is ours. What a run does with them
(threads, timing, latency) is :mod:`benchmarks.ycsb_run`.

* Records are loaded with key numbers 0 .. records-1; inserts during the run take
  the next numbers from one shared :class:`~benchmarks.generators.AcknowledgedCounter`.
* A key number becomes a key by YCSB's hashed insert order:
  ``b"user" + fnv_hash64(n)`` (zero-padded to 19 digits here, so every key has
  the same length), so inserts land all over the key space.
* ``zipfian`` draws from a scrambled zipfian over the records plus twice the
  inserts expected, and draws again while the number is not yet inserted;
  ``latest`` favours the newest inserts; ``uniform`` is uniform over the loaded
  records, as in YCSB.
* Scan lengths (workload E) are uniform in 1 .. 100.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeAlias

from benchmarks.generators import (
    AcknowledgedCounter,
    ScrambledZipfian,
    SkewedLatest,
    Uniform,
    fnv_hash64,
)

Distribution: TypeAlias = Literal["uniform", "zipfian", "latest"]
DISTRIBUTIONS: tuple[Distribution, ...] = ("uniform", "zipfian", "latest")

Op: TypeAlias = Literal["read", "update", "insert", "scan", "rmw"]
#: Operation types, in the order tables show them (rmw: read-modify-write).
OPS: tuple[Op, ...] = ("read", "update", "insert", "scan", "rmw")


@dataclass(frozen=True, slots=True)
class Mix:
    """One YCSB core workload: how often each operation runs, and on which keys."""

    name: str
    about: str
    proportions: dict[Op, float]
    distribution: Distribution
    max_scan_length: int = 100

    def ops(self) -> list[Op]:
        return [op for op in OPS if self.proportions.get(op, 0.0) > 0]


MIXES: dict[str, Mix] = {
    m.name: m
    for m in (
        Mix(
            "ycsb-a",
            "update heavy: 50% reads, 50% updates",
            {"read": 0.5, "update": 0.5},
            "zipfian",
        ),
        Mix(
            "ycsb-b",
            "read mostly: 95% reads, 5% updates",
            {"read": 0.95, "update": 0.05},
            "zipfian",
        ),
        Mix("ycsb-c", "read only", {"read": 1.0}, "zipfian"),
        Mix(
            "ycsb-d", "read latest: 95% reads, 5% inserts", {"read": 0.95, "insert": 0.05}, "latest"
        ),
        Mix(
            "ycsb-e",
            "short ranges: 95% scans of 1-100 records, 5% inserts",
            {"scan": 0.95, "insert": 0.05},
            "zipfian",
        ),
        Mix("ycsb-f", "50% reads, 50% read-modify-writes", {"read": 0.5, "rmw": 0.5}, "zipfian"),
    )
}


def ycsb_key(number: int) -> bytes:
    """The key of record ``number``, in YCSB's hashed insert order."""
    return b"user%019d" % fnv_hash64(number)


class OpChooser:
    """Draws operation types in the mix's proportions."""

    def __init__(self, mix: Mix, rng: random.Random) -> None:
        self.rng = rng
        self.ops = mix.ops()
        total = sum(mix.proportions[op] for op in self.ops)
        bounds, acc = [], 0.0
        for op in self.ops:
            acc += mix.proportions[op] / total
            bounds.append(acc)
        self.bounds = bounds[:-1]  # the last op takes everything above the others

    def next(self) -> Op:
        return self.ops[bisect_right(self.bounds, self.rng.random())]


def key_chooser(
    distribution: Distribution,
    records: int,
    expected_inserts: int,
    counter: AcknowledgedCounter,
    rng: random.Random,
) -> Callable[[], int]:
    """A function giving the key number of the next read, update, scan or rmw."""
    if distribution == "uniform":
        return Uniform(0, records - 1, rng).next
    if distribution == "latest":
        return SkewedLatest(counter, rng).next
    scrambled = ScrambledZipfian(records + 2 * expected_inserts, rng)

    def next_zipfian() -> int:
        while True:
            number = scrambled.next()
            if number <= counter.last():
                return number

    return next_zipfian
