"""Real kills of several processes sharing one store, checked over their merged history.

``python -m engine.testing.multikill [--seconds N] [--writers 4] [--readers 4]``
(also in ``make crashtest``). Writer processes open the store with
``shared=True``; reader processes with ``readonly=True``. The parent SIGKILLs
a random one of them every few tenths of a second (a writer often in the
middle of an append, holding the append lock) and starts it again.

Writer ``w`` counts ``i = 1, 2, ...`` and writes, as one batch, ``k{w}:{i % K}``
= ``"{w}:{i}"`` and ``last{w}`` = ``i``; after the batch returns it
acknowledges ``i`` on a pipe (one ``os.write``, atomic). A writer started again
reads ``last{w}`` and goes on after it. So the merged history fixes the whole
state by each writer's ``last``, and:

- *nothing acknowledged is lost*: ``last{w}`` is at least the highest ``i``
  acknowledged, in every process's view at the end, and in the store opened
  alone afterwards (default recovery, which refuses damage followed by valid
  records);
- *every state shown is a prefix of the history*: a reader that reads
  ``last{w} = L`` and then ``k{w}:{L % K}`` finds ``i >= L`` with ``i ≡ L``
  (mod K); the ``last`` a reader sees never goes back.

Compaction runs automatically with small thresholds, so kills also land in
compactions, rollovers (small segments) and clean-ups of killed appends.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field

from engine.engine import Engine

#: Keys per writer besides its ``last`` key.
KEYS = 16
SEGMENT_SIZE = 64 << 10


def _key(writer: int, i: int) -> bytes:
    return f"k{writer}:{i % KEYS}".encode()


def _last(writer: int) -> bytes:
    return f"last{writer}".encode()


def _open(directory: str, *, shared: bool) -> Engine:
    return Engine.open(
        directory,
        shared=shared,
        readonly=not shared,
        segment_size=SEGMENT_SIZE,
        compact_min_bytes=16 << 10,
        compact_interval=0.05,
    )


def _report(pipe: int, line: str) -> None:
    os.write(pipe, (line + "\n").encode())


def run_writer(directory: str, writer: int, pipe: int) -> None:
    """Write batches forever, acknowledging each on ``pipe`` after it returns."""
    db = _open(directory, shared=True)
    found = db.get(_last(writer))
    i = int(found) if found is not None else 0
    while True:
        i += 1
        with db.batch() as batch:
            batch.put(_key(writer, i), f"{writer}:{i}".encode())
            batch.put(_last(writer), str(i).encode())
        _report(pipe, f"A {writer} {i}")


def run_reader(directory: str, writers: int, seed: int, pipe: int) -> None:
    """Read forever; report any state that is not a prefix of the history."""
    rng = random.Random(seed)
    db = _open(directory, shared=False)
    seen = [0] * writers
    reads = 0
    while True:
        writer = rng.randrange(writers)
        found = db.get(_last(writer))
        last = int(found) if found is not None else 0
        if last < seen[writer]:
            _report(pipe, f"V reader saw last{writer} go back from {seen[writer]} to {last}")
        seen[writer] = last
        if last:
            value = db.get(_key(writer, last))
            number = -1 if value is None else int(value.split(b":")[1])
            if number < last or (number - last) % KEYS:
                _report(
                    pipe, f"V reader saw last{writer}={last} but {_key(writer, last)!r}={value!r}"
                )
        reads += 1
        if reads % 1000 == 0:
            _report(pipe, "R 1000")


@dataclass
class Outcome:
    """What a run did and found."""

    kills: int = 0
    writer_kills: int = 0
    acknowledged: int = 0
    reads: int = 0
    violations: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"multi-process kills: {self.kills} SIGKILLs ({self.writer_kills} of writers), "
            f"{self.acknowledged} batches acknowledged, {self.reads} reads checked, "
            f"{len(self.violations)} violations"
        )


def _spawn(role: str, number: int, directory: str, writers: int, pipe: int, seed: int) -> int:
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        if role == "writer":
            run_writer(directory, number, pipe)
        else:
            run_reader(directory, writers, seed, pipe)
    except BaseException as exc:  # the parent reports it as a violation
        _report(pipe, f"V {role} {number} failed: {exc!r}")
        code = 1
    os._exit(code)


def multikill(
    directory: str, *, seconds: float, writers: int = 4, readers: int = 4, seed: int = 1
) -> Outcome:
    """Run writers and readers with random SIGKILLs for ``seconds``, then check the store."""
    rng = random.Random(seed)
    outcome = Outcome()
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)
    # The store exists before anyone reads it.
    _open(directory, shared=True).close()
    roles = [("writer", n) for n in range(writers)] + [("reader", n) for n in range(readers)]
    pids = {
        role: _spawn(role[0], role[1], directory, writers, write_end, rng.randrange(1 << 30))
        for role in roles
    }
    acked = [0] * writers
    pending = b""
    deadline = time.monotonic() + seconds
    next_kill = time.monotonic() + rng.uniform(0.05, 0.4)

    def drain() -> None:
        nonlocal pending
        while True:
            try:
                chunk = os.read(read_end, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                break
            pending += chunk
        *lines, pending = pending.split(b"\n")
        for line in lines:
            kind, _, rest = line.decode().partition(" ")
            if kind == "A":
                writer, number = map(int, rest.split())
                acked[writer] = max(acked[writer], number)
                outcome.acknowledged += 1
            elif kind == "R":
                outcome.reads += int(rest)
            else:
                outcome.violations.append(rest)

    try:
        while time.monotonic() < deadline:
            time.sleep(0.01)
            drain()
            for role, pid in list(pids.items()):
                done, _status = os.waitpid(pid, os.WNOHANG)
                if done:  # it exited by itself: it reported why
                    pids[role] = _spawn(
                        *role, directory, writers, write_end, rng.randrange(1 << 30)
                    )
            if time.monotonic() >= next_kill:
                role = rng.choice(roles)
                os.kill(pids[role], signal.SIGKILL)
                os.waitpid(pids[role], 0)
                outcome.kills += 1
                outcome.writer_kills += role[0] == "writer"
                pids[role] = _spawn(*role, directory, writers, write_end, rng.randrange(1 << 30))
                next_kill = time.monotonic() + rng.uniform(0.05, 0.4)
    finally:
        for pid in pids.values():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        drain()
        os.close(read_end)
        os.close(write_end)
    outcome.violations += check_store(directory, acked)
    return outcome


def check_store(directory: str, acked: list[int]) -> list[str]:
    """Open the store alone (default recovery) and check every writer's state."""
    problems = []
    with Engine.open(directory, auto_compact=False) as db:
        for writer, highest in enumerate(acked):
            found = db.get(_last(writer))
            last = int(found) if found is not None else 0
            if last < highest:
                problems.append(f"last{writer}={last} but {highest} was acknowledged")
            for i in range(max(last - KEYS + 1, 1), last + 1):
                value = db.get(_key(writer, i))
                if value != f"{writer}:{i}".encode():
                    problems.append(f"{_key(writer, i)!r}={value!r}, expected {writer}:{i}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.testing.multikill", description=__doc__)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dir", help="store directory (default: a temporary one)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="seglog-multikill-") as scratch:
        directory = args.dir or os.path.join(scratch, "store")
        outcome = multikill(
            directory,
            seconds=args.seconds,
            writers=args.writers,
            readers=args.readers,
            seed=args.seed,
        )
    print(outcome.summary())
    for violation in outcome.violations:
        print(f"VIOLATION {violation}")
    return 1 if outcome.violations else 0


if __name__ == "__main__":
    sys.exit(main())
