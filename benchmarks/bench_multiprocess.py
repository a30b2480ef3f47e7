"""Readers in another process (``Engine.open(path, readonly=True)``) against the owner.

Two figures, from three processes (this one only coordinates):

- random gets: the same random keys read by the owner process and by a reader
  process, alternated over ``--rounds``; the ratio is reader / owner
  (issue 15's goal: at least 0.8);
- visibility: the owner writes a probe key every ``--interval`` seconds,
  stamping the value with ``time.perf_counter()`` (CLOCK_MONOTONIC, one clock
  for every process) taken just before its ``put``; the reader process reads
  the key in a loop and, for each new stamp it sees, records how long after
  the stamp its ``get`` returned it. Median and p99.

    .venv/bin/python benchmarks/bench_multiprocess.py [--keys 100000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import shutil
import statistics
import struct
import tempfile
import time
from multiprocessing.connection import Connection
from typing import Any

from engine import Engine

VALUE = bytes(100)
PROBE = b"probe"
STAMP = struct.Struct("<qd")
_fork = multiprocessing.get_context("fork")


def _keys(count: int, seed: int, n: int) -> list[bytes]:
    chooser = random.Random(seed)
    return [b"key%09d" % chooser.randrange(count) for _ in range(n)]


def timed_gets(db: Engine, keys: list[bytes]) -> float:
    """Gets per second over ``keys``; every key must be found."""
    get = db.get
    start = time.perf_counter()
    for key in keys:
        if get(key) is None:
            raise AssertionError(f"{key!r} missing")
    return len(keys) / (time.perf_counter() - start)


def _owner(path: str, count: int, pipe: Connection) -> None:
    with Engine.open(path, sync="periodic") as db:
        for start in range(0, count, 1000):
            with db.batch() as batch:
                for i in range(start, min(start + 1000, count)):
                    batch.put(b"key%09d" % i, VALUE)
        pipe.send("ready")
        while True:
            command, *args = pipe.recv()
            if command == "gets":
                pipe.send(timed_gets(db, _keys(count, *args)))
            elif command == "probe":
                probes, interval = args
                for n in range(1, probes + 1):
                    db.put(PROBE, STAMP.pack(n, time.perf_counter()))
                    time.sleep(interval)
                pipe.send("done")
            else:
                return


def _reader(path: str, count: int, pipe: Connection) -> None:
    with Engine.open(path, readonly=True) as db:
        pipe.send("ready")
        while True:
            command, *args = pipe.recv()
            if command == "gets":
                pipe.send(timed_gets(db, _keys(count, *args)))
            elif command == "watch":
                pipe.send(_watch(db, args[0]))
            else:
                return


def _watch(db: Engine, probes: int) -> list[float]:
    """Read the probe key until the last stamp is seen; the delay of each new one seen."""
    delays: list[float] = []
    last = 0
    get = db.get
    while last < probes:
        value = get(PROBE)
        now = time.perf_counter()
        if value is not None:
            n, stamp = STAMP.unpack(value)
            if n != last:
                delays.append(now - stamp)
                last = n
    return delays


def _start(target: Any, path: str, count: int) -> tuple[Any, Connection]:
    pipe, child = _fork.Pipe()
    process = _fork.Process(target=target, args=(path, count, child), daemon=True)
    process.start()
    if pipe.recv() != "ready":
        raise RuntimeError("process did not start")
    return process, pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--gets", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--interval", type=float, default=0.001)
    args = parser.parse_args()
    directory = tempfile.mkdtemp(prefix="seglog-mp-")
    try:
        owner, to_owner = _start(_owner, directory, args.keys)
        reader, to_reader = _start(_reader, directory, args.keys)
        owned: list[float] = []
        followed: list[float] = []
        for round_ in range(args.rounds):
            for rates, pipe in ((owned, to_owner), (followed, to_reader)):
                pipe.send(("gets", round_, args.gets))
                rates.append(pipe.recv())
        to_reader.send(("watch", args.probes))
        to_owner.send(("probe", args.probes, args.interval))
        to_owner.recv()
        delays = sorted(to_reader.recv())
        for pipe in (to_owner, to_reader):
            pipe.send(("stop",))
        owner.join(30)
        reader.join(30)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    own, follow = statistics.median(owned), statistics.median(followed)
    print(f"random gets, {args.keys:,} keys, median of {args.rounds} rounds of {args.gets:,}:")
    print(f"  owner process   {own:12,.0f} gets/s")
    print(f"  reader process  {follow:12,.0f} gets/s   reader/owner {follow / own:.2f}x")
    p50 = delays[len(delays) // 2] * 1e6
    p99 = delays[min(len(delays) - 1, int(0.99 * len(delays)))] * 1e6
    print(f"write visible to the reader's next get ({len(delays):,} writes seen):")
    print(f"  median {p50:8.1f} us   p99 {p99:8.1f} us   max {delays[-1] * 1e6:8.1f} us")


if __name__ == "__main__":
    main()
