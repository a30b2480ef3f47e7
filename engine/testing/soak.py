"""The soak: hours of mixed load in minutes, with SIGKILLs, checked against a model per key.

``python -m engine.testing.soak [--seconds N] [--dir D]`` (``make soak``; 600 s
by default, ``SOAK_SECONDS`` to change). A child process opens one store with
automatic compaction and runs 16 threads of puts, gets, deletes, prefix scans,
batches and TTLs. Every few seconds the parent kills it with ``SIGKILL``,
opens the store itself and checks every key, then starts a new child.

Each thread owns its own keys, so its operations on them happen in order and a
model per key is exact. A thread announces each write before making it
(``I``) and acknowledges it after it returns (``A``), one line each on
stdout, written with one ``os.write`` (atomic on a pipe). After a kill, a key
holds its last acknowledged state, or, if a write to it was announced but not
acknowledged, that write's state; a batch's keys are all old or all new. A key
whose expiry has passed must be gone. Inside the child, ``get`` and scans of a
thread's own keys must match that thread's model at every moment.

The child reports its resident memory, open descriptors, segment files and
dead-byte ratio once a second (``S``), and the report gives their peak and
their value over time: memory and descriptors stay flat, nothing is lost.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import inf
from typing import Any

from engine.errors import StorageError

THREADS = 16
KEYS_PER_THREAD = 64
#: A key expires this far (seconds) from its write, for puts with a TTL.
SHORT_TTL = 2.0
#: A key's state: its value and the bounds of its absolute expiry (None: never; a write
#: announced but not acknowledged knows only that it expires after its announcement),
#: or None when absent.
State = tuple[str, float | None, float | None] | None


def present(
    expires_low: float | None, expires_high: float | None, before: float, after: float
) -> bool | None:
    """Whether a key with these expiry bounds must be visible to a read made between
    ``before`` and ``after`` (True), must not be (False), or may be either (None)."""
    if expires_low is None:
        return True
    if expires_high is not None and expires_high <= before:
        return False
    return True if expires_low > after else None


def key_of(thread: int, index: int) -> bytes:
    return b"t%02d:%03d" % (thread, index)


def announce(kind: str, *fields: object) -> None:
    """One protocol line to the parent, in a single write (atomic on a pipe)."""
    os.write(1, (" ".join([kind, *map(str, fields)]) + "\n").encode())


# --------------------------------------------------------------------------- child


def child(directory: str, seed: int) -> None:
    """Run the load until killed (never returns normally)."""
    from engine import Engine

    db = Engine.open(
        directory,
        segment_size=256 << 10,
        compact_min_bytes=64 << 10,
        compact_ratio=0.3,
        compact_interval=0.2,
    )
    violations = [0]
    ops = [0]

    def worker(thread: int) -> None:
        rng = random.Random(seed * 1000 + thread)
        prefix = b"t%02d:" % thread
        model: dict[bytes, tuple[bytes, float | None]] = {}
        for key, value in db.scan(prefix=prefix):
            entry = db.get_entry(key)
            if entry is not None:
                model[key] = (value, entry[1])
        counter = 0

        def expected(key: bytes, before: float, after: float) -> bytes | str | None:
            state = model.get(key)
            if state is None:
                return None
            value, expires = state
            visible = present(expires, expires, before, after)
            return "either" if visible is None else value if visible else None

        def check(key: bytes, found: bytes | None, before: float, after: float, how: str) -> None:
            want = expected(key, before, after)
            now = after
            if want != "either" and found != want:
                violations[0] += 1
                state = model.get(key)
                announce(
                    "V",
                    thread,
                    f"{how} {key.decode()} at {now:.3f}: got {found[:12]!r}"
                    if found is not None
                    else f"{how} {key.decode()} at {now:.3f}: got None",
                    f"want {want if not isinstance(want, bytes) else want[:12]!r}",
                    f"(model expiry {None if state is None else state[1]})",
                )

        while True:
            counter += 1
            roll = rng.random()
            key = key_of(thread, rng.randrange(KEYS_PER_THREAD))
            value = b"%d:%d:" % (thread, counter) + bytes(rng.randrange(10, 200))
            if roll < 0.35:
                ttl = SHORT_TTL if rng.random() < 0.2 else None
                expires = None if ttl is None else time.time() + ttl
                announce("I", thread, counter, json.dumps([[key.decode(), value.hex(), expires]]))
                db.put(key, value, ttl=ttl)
                if ttl is not None:  # the engine's own expiry, a moment after the announced one
                    entry = db.get_entry(key)
                    expires = entry[1] if entry is not None else expires
                model[key] = (value, expires)
                announce("A", thread, counter, "" if expires is None else repr(expires))
            elif roll < 0.45:
                announce("I", thread, counter, json.dumps([[key.decode(), None, None]]))
                db.delete(key)
                model.pop(key, None)
                announce("A", thread, counter)
            elif roll < 0.55:
                keys = rng.sample(range(KEYS_PER_THREAD), rng.randrange(2, 5))
                members: list[tuple[bytes, bytes | None]] = []
                with db.batch() as batch:
                    for index in keys:
                        member = key_of(thread, index)
                        if rng.random() < 0.7:
                            member_value = value + b"%d" % index
                            batch.put(member, member_value)
                            members.append((member, member_value))
                        else:
                            batch.delete(member)
                            members.append((member, None))
                    states = [
                        [m.decode(), None if v is None else v.hex(), None] for m, v in members
                    ]
                    announce("I", thread, counter, json.dumps(states))
                for member, new_value in members:
                    if new_value is None:
                        model.pop(member, None)
                    else:
                        model[member] = (new_value, None)
                announce("A", thread, counter)
            elif roll < 0.95:
                before = time.time()
                found = db.get(key)
                check(key, found, before, time.time(), "get")
            else:
                before = time.time()
                seen = dict(db.scan(prefix=prefix))
                after = time.time()
                for each in set(seen) | set(model):
                    check(each, seen.get(each), before, after, "scan")
            ops[0] += 1

    for thread in range(THREADS):
        threading.Thread(target=worker, args=(thread,), daemon=True).start()
    while True:
        time.sleep(1.0)
        stats = db.stats()
        disk = max(stats["disk_bytes"], 1)
        announce(
            "S",
            ops[0],
            _rss_bytes(),
            len(os.listdir("/proc/self/fd")),
            stats["segment_count"],
            round(stats["dead_bytes"] / disk, 4),
            violations[0],
        )


def _rss_bytes() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


# --------------------------------------------------------------------------- parent


@dataclass
class Sample:
    """One second of one child: operations so far, memory, descriptors, segments, dead share."""

    seconds: float
    ops: int
    rss: int
    fds: int
    segments: int
    dead_ratio: float


@dataclass
class SoakReport:
    """What a soak did and found."""

    seconds: float = 0.0
    operations: int = 0
    writes_acknowledged: int = 0
    kills: int = 0
    keys_checked: int = 0
    violations: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def summary(self) -> str:
        peak_rss = max((s.rss for s in self.samples), default=0)
        peak_fds = max((s.fds for s in self.samples), default=0)
        peak_dead = max((s.dead_ratio for s in self.samples), default=0.0)
        return (
            f"soak: {self.seconds:.0f} s, {self.operations:,} operations, "
            f"{self.writes_acknowledged:,} writes acknowledged, {self.kills} SIGKILLs, "
            f"{self.keys_checked:,} keys checked after them, violations: {len(self.violations)}; "
            f"peak RSS {peak_rss / 2**20:.1f} MiB, peak descriptors {peak_fds}, "
            f"peak dead-byte ratio {peak_dead:.2f}"
        )

    def timeline(self, every: float = 60.0) -> Iterator[str]:
        """A line per ``every`` seconds: memory, descriptors, segments and dead share."""
        next_at = 0.0
        for sample in self.samples:
            if sample.seconds >= next_at:
                next_at = sample.seconds + every
                yield (
                    f"  {sample.seconds:6.0f} s: RSS {sample.rss / 2**20:6.1f} MiB, "
                    f"{sample.fds:3d} descriptors, {sample.segments:3d} segments, "
                    f"dead {sample.dead_ratio:.2f}"
                )


class Model:
    """Per key, the last acknowledged state, and per thread the write announced but not
    acknowledged yet (its keys' new states)."""

    def __init__(self) -> None:
        self.acked: dict[str, State] = {}
        self.pending: dict[int, list[tuple[str, State]]] = {}
        self.acknowledged = 0

    def announced(self, thread: int, states: list[list[Any]]) -> None:
        self.pending[thread] = [
            (key, None if value is None else (value, expires, None if expires is None else inf))
            for key, value, expires in states
        ]

    def acknowledge(self, thread: int, expires: float | None = None) -> None:
        """The thread's announced write returned; ``expires`` is its exact expiry, if any."""
        for key, state in self.pending.pop(thread, []):
            if state is not None and expires is not None:
                state = (state[0], expires, expires)
            self.acked[key] = state
        self.acknowledged += 1

    def check(
        self, read: dict[str, tuple[str, float | None]], before: float, after: float
    ) -> list[str]:
        """Problems with the store's contents ``read`` (key -> (hex value, expiry)), read
        between ``before`` and ``after``."""
        problems = []
        in_flight = {key for states in self.pending.values() for key, _ in states}

        def matches(key: str, state: State) -> bool:
            return _matches(read.get(key), state, before, after)

        for key in set(self.acked) | set(read):
            if key not in in_flight and not matches(key, self.acked.get(key)):
                problems.append(f"{key}: found {read.get(key)}, acknowledged {self.acked.get(key)}")
        for thread, states in self.pending.items():
            old = all(matches(k, self.acked.get(k)) for k, _ in states)
            new = all(matches(k, state) for k, state in states)
            if not (old or new):
                problems.append(f"thread {thread}: a write was half applied: {states}")
            elif new and not old:  # it landed: the kill came after the write, before the ack
                for key, state in states:
                    self.acked[key] = state
        self.pending.clear()
        return problems


def _matches(
    found: tuple[str, float | None] | None, state: State, before: float, after: float
) -> bool:
    """Whether ``found`` (hex value, expiry), read between ``before`` and ``after``, is
    what ``state`` leaves."""
    if state is None:
        return found is None
    value, low, high = state
    visible = present(low, high, before, after)
    if visible is None:
        return found is None or found[0] == value
    return found is not None and found[0] == value if visible else found is None


def read_back(directory: str) -> dict[str, tuple[str, float | None]]:
    """Every live key of the store as (hex value, expiry), opened after a kill."""
    from engine import Engine

    with Engine.open(directory, auto_compact=False) as db:
        found = {}
        for key in db.scan_keys():
            entry = db.get_entry(key)
            if entry is not None:
                found[key.decode()] = (entry[0].hex(), entry[1])
        return found


def soak(
    seconds: float, directory: str, *, seed: int = 1, kill_every: tuple[float, float] = (4, 12)
) -> SoakReport:
    """Run the soak for ``seconds`` in ``directory``; the report says what happened."""
    rng = random.Random(seed)
    model = Model()
    report = SoakReport()
    started = time.monotonic()
    ops_before = 0
    generation = 0
    while time.monotonic() - started < seconds:
        generation += 1
        process = subprocess.Popen(
            [sys.executable, "-m", "engine.testing.soak", "--child", directory, str(generation)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        lines: list[bytes] = []
        reader = threading.Thread(target=lines.extend, args=(process.stdout,), daemon=True)
        reader.start()
        life = min(rng.uniform(*kill_every), max(seconds - (time.monotonic() - started), 0.5))
        time.sleep(life)
        process.send_signal(signal.SIGKILL)
        process.wait()
        reader.join()
        report.kills += 1
        last_ops = 0
        for line in lines:
            kind, *rest = line.decode().split(" ", 3)
            if kind == "I":
                model.announced(int(rest[0]), json.loads(rest[2]))
            elif kind == "A":
                exact = rest[2].strip() if len(rest) > 2 else ""
                model.acknowledge(int(rest[0]), float(exact) if exact else None)
            elif kind == "V":
                report.violations.append("in the child: " + " ".join(rest))
            elif kind == "S":
                ops, rss, fds, segments, dead, _ = line.decode().split()[1:]
                last_ops = int(ops)
                report.samples.append(
                    Sample(
                        time.monotonic() - started,
                        ops_before + last_ops,
                        int(rss),
                        int(fds),
                        int(segments),
                        float(dead),
                    )
                )
        ops_before += last_ops
        before = time.time()
        try:
            contents = read_back(directory)
        except StorageError as exc:
            report.violations.append(
                f"after SIGKILL {report.kills}: the store does not open: {exc}"
            )
            break
        report.keys_checked += len(set(model.acked) | set(contents))
        report.violations += model.check(contents, before, time.time())
    report.seconds = time.monotonic() - started
    report.operations = max(ops_before, model.acknowledged)
    report.writes_acknowledged = model.acknowledged
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.testing.soak", description=__doc__)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--dir", help="store directory (default: a temporary one)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--child", nargs=2, metavar=("DIR", "SEED"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    with tempfile.TemporaryDirectory(prefix="seglog-soak-") as scratch:
        report = soak(args.seconds, args.dir or os.path.join(scratch, "store"), seed=args.seed)
    print(report.summary())
    for line in report.timeline():
        print(line)
    for violation in report.violations[:20]:
        print("  violation:", violation)
    return 1 if report.violations else 0


if __name__ == "__main__":
    sys.exit(main())
