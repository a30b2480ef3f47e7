"""A writer for the real-kill tests: applies a seeded program, acknowledging each call.

Usage: ``python kill_writer.py DIRECTORY SYNC SEED SEGMENT_SIZE [THREADS]``. It
prints ``opening`` before ``Engine.open``, ``open`` after it, then ``ack N``
after call ``N`` of ``program(SEED)`` returns, until it is killed. With
``THREADS``, that many threads write their own keys (``thread_program``) and
print ``ack THREAD N``: concurrent writers share fsyncs (group commit). The parent kills
it with SIGKILL at a random moment and checks that every acknowledged call
survived.
"""

from __future__ import annotations

import os
import random
import sys
import threading
from collections.abc import Iterator

from engine import Engine

KEYS = [b"k%d" % i for i in range(6)]

#: One call: ("put", key, value, ttl) / ("delete", key) / ("batch", ((key, value|None), ...)).
Call = tuple[object, ...]


def program(seed: int) -> Iterator[Call]:
    """The calls the writer makes, deterministic in ``seed`` (the parent replays them)."""
    rng = random.Random(seed)
    for serial in range(1_000_000):
        roll = rng.random()
        key = rng.choice(KEYS)
        value = f"{seed}:{serial}:".encode() + b"v" * rng.randrange(0, 300)
        if roll < 0.6:
            yield ("put", key, value, rng.choice([None, 3600.0]))
        elif roll < 0.8:
            yield ("delete", key)
        else:
            items = tuple(
                (rng.choice(KEYS), value + b"%d" % i if rng.random() < 0.7 else None)
                for i in range(rng.randrange(1, 4))
            )
            yield ("batch", items)


def apply(db: Engine, call: Call) -> None:
    if call[0] == "put":
        _, key, value, ttl = call
        db.put(key, value, ttl=ttl)  # type: ignore[arg-type]
    elif call[0] == "delete":
        db.delete(call[1])  # type: ignore[arg-type]
    else:
        with db.batch() as batch:
            for key, value in call[1]:  # type: ignore[attr-defined]
                if value is None:
                    batch.delete(key)
                else:
                    batch.put(key, value)


def thread_program(thread: int) -> Iterator[tuple[bytes, bytes | None]]:
    """Thread ``thread``'s calls in the threaded writer: puts and deletes on its own keys."""
    rng = random.Random(thread)
    for serial in range(1_000_000):
        key = b"t%d-%d" % (thread, rng.randrange(3))
        yield (
            key,
            (b"%d:%d:" % (thread, serial) + b"w" * rng.randrange(200))
            if rng.random() < 0.8
            else None,
        )


def main() -> None:
    directory, sync, seed, segment_size = sys.argv[1:5]
    threads = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    out = sys.stdout.fileno()
    os.write(out, b"opening\n")
    options: dict[str, object] = {"sync": sync, "segment_size": int(segment_size)}
    if sync == "periodic":
        options["sync_interval"] = 0.02
    db = Engine.open(directory, **options)  # type: ignore[arg-type]
    os.write(out, b"open\n")
    if threads:
        workers = [threading.Thread(target=_write_thread, args=(db, t)) for t in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return
    for serial, call in enumerate(program(int(seed))):
        apply(db, call)
        os.write(out, b"ack %d\n" % serial)


def _write_thread(db: Engine, thread: int) -> None:
    out = sys.stdout.fileno()
    for serial, (key, value) in enumerate(thread_program(thread)):
        if value is None:
            db.delete(key)
        else:
            db.put(key, value)
        os.write(out, b"ack %d %d\n" % (thread, serial))  # one write(): lines never interleave


if __name__ == "__main__":
    main()
