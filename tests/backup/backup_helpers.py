"""Helpers for the checkpoint and backup tests: writer threads whose writes a copy must prefix."""

from __future__ import annotations

import threading
from typing import Final

from engine import Engine

#: Keys each writer cycles through, so that it overwrites (dead bytes for compaction).
KEYS: Final = 50


class Writers:
    """Threads each putting rounds ``i = 0, 1, ...``: key ``w{n}-{i % KEYS}`` then ``w{n}-last``.

    A consistent copy taken while they run holds, for every writer, exactly its
    first ``last + 1`` rounds (``last`` from its ``-last`` key), perhaps plus the
    first put of the round after: anything else is a later write without an
    earlier one, or a lost one.
    """

    def __init__(self, db: Engine, count: int = 8, *, rounds: int = 20_000) -> None:
        self.db = db
        self.acked = [0] * count
        self.rounds = rounds
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, args=(n,)) for n in range(count)]
        self.errors: list[BaseException] = []

    def _write(self, writer: int) -> None:
        try:
            for i in range(self.rounds):
                if self.stop.is_set():
                    return
                self.db.put(f"w{writer}-{i % KEYS:02d}".encode(), f"{i}".encode())
                self.db.put(f"w{writer}-last".encode(), f"{i}".encode())
                self.acked[writer] = i + 1
        except BaseException as exc:
            self.errors.append(exc)

    def __enter__(self) -> Writers:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)
        assert not any(t.is_alive() for t in self.threads), "a writer hung"
        assert not self.errors, self.errors

    def snapshot(self) -> list[int]:
        """Rounds each writer has finished (acknowledged) so far."""
        return list(self.acked)


def prefix_problems(got: dict[bytes, bytes], before: list[int], after: list[int]) -> list[str]:
    """How ``got`` fails to hold a prefix of each writer's rounds, between ``before`` and ``after``.

    ``before``: rounds acknowledged before the copy began (it must hold them);
    ``after``: rounds acknowledged once it was done (it may hold no more).
    """
    problems = []
    for w, (low, high) in enumerate(zip(before, after, strict=True)):
        last_key = f"w{w}-last".encode()
        rounds = int(got[last_key]) + 1 if last_key in got else 0
        if not low <= rounds <= high:
            problems.append(f"writer {w}: {rounds} rounds, expected {low} to {high}")
        for j in range(KEYS):
            key = f"w{w}-{j:02d}".encode()
            allowed = {_newest(j, rounds), _newest(j, rounds + 1)}
            if got.get(key) not in allowed:
                problems.append(f"writer {w}: {key!r} = {got.get(key)!r}, expected {allowed}")
    return problems


def _newest(j: int, rounds: int) -> bytes | None:
    """What a writer's key ``j`` holds after ``rounds`` rounds."""
    return None if rounds <= j else f"{j + (rounds - 1 - j) // KEYS * KEYS}".encode()
