"""The driver of seglog's crash workloads: runs actions and remembers what each promised.

A ``Driver`` runs ``Action``s on an ``Engine`` over a ``CrashSimulator``,
tells the oracle's ``History`` about each call (in flight, then acknowledged,
and whether it was durable), and marks where each call's file operations sit
in the journal, so that ``crash_points`` can give every journal position the
bounds a crash there must meet.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from engine.engine import Engine
from engine.fs import FileSystem
from engine.options import SyncMode
from engine.testing.actions import (
    ADVANCE,
    PATH,
    SEGMENT_SIZE,
    TTL,
    VALUE_SIZE,
    Action,
    Wrap,
    open_engine,
)
from engine.testing.clock import ManualClock
from engine.testing.legacy import downgrade
from engine.testing.memfs import MemoryFileSystem
from engine.testing.oracle import Bounds, History, Model, visible
from engine.testing.simulator import CrashSimulator


@dataclass
class Mark:
    """Where one action's file operations start and end in the journal, and its bounds."""

    action: str
    start: int
    end: int
    acked: int
    durable_before: int
    durable_after: int
    now: float


class Driver:
    """Runs actions on an engine over a simulator, keeping the history and journal marks."""

    def __init__(
        self,
        sim: CrashSimulator,
        *,
        sync: SyncMode,
        history: History | None = None,
        clock: ManualClock | None = None,
        segment_size: int = SEGMENT_SIZE,
        wrap: Wrap | None = None,
        path: str = PATH,
    ) -> None:
        self.sim = sim
        self.sync: SyncMode = sync
        self.history = history or History()
        self.clock = clock or ManualClock()
        self.segment_size = segment_size
        self.wrap = wrap
        self.path = path
        self.db: Engine | None = None
        self.marks: list[Mark] = []
        self.serial = itertools.count()

    def engine_fs(self, fs: MemoryFileSystem) -> FileSystem:
        return self.wrap(fs) if self.wrap is not None else fs

    def open_engine(self, fs: MemoryFileSystem) -> Engine:
        return open_engine(
            self.path,
            self.engine_fs(fs),
            sync=self.sync,
            clock=self.clock,
            segment_size=self.segment_size,
        )

    def value(self, key: bytes) -> bytes:
        return f"{key.decode()}={next(self.serial)}:".encode().ljust(VALUE_SIZE, b".")

    def open(self) -> None:
        self._run("open", dict(self.history.current), False, self._open)

    def _open(self) -> None:
        self.db = self.open_engine(self.sim.fs)

    def run(self, action: Action) -> None:
        """Run ``action``; the history learns it first as in flight, then acknowledged."""
        model: Model = dict(self.history.current)
        now = self.clock.now
        always = self.sync == "always"
        kind = action.kind
        if kind == "reopen":
            self._run("close", model, True, self._close)
            self.open()
            return
        if kind == "downgrade":  # a prologue's step: the store as an older seglog left it
            self._run("close", model, True, self._close)
            downgrade(self.sim.fs, self.path)
            self.open()
            return
        db = self.db
        assert db is not None
        call: Callable[[], Any]
        durable = False
        if kind == "put":
            value = self.value(action.key)
            model[action.key] = (value, 0.0)
            call, durable = (lambda: db.put(action.key, value)), always
        elif kind == "put_ttl":
            value = self.value(action.key)
            model[action.key] = (value, now + TTL)
            call, durable = (lambda: db.put(action.key, value, ttl=TTL)), always
        elif kind == "delete":
            durable = always and action.key in visible(model, now)
            model.pop(action.key, None)
            call = lambda: db.delete(action.key)  # noqa: E731
        elif kind == "batch":
            staged = []
            for key, is_put in action.items:
                value = self.value(key) if is_put else b""
                staged.append((key, value if is_put else None))
                if is_put:
                    model[key] = (value, 0.0)
                else:
                    model.pop(key, None)
            call, durable = (lambda: _commit(db, staged)), always
        elif kind == "sync":
            call, durable = db.sync, True
        elif kind == "advance":
            call = lambda: self.clock.advance(ADVANCE)  # noqa: E731
        elif kind == "compact":
            call = getattr(db, "compact")  # noqa: B009
        else:
            raise ValueError(f"unknown action {action}")
        self._run(str(action), model, durable, call)

    def _close(self) -> None:
        assert self.db is not None
        self.db.close()
        self.db = None

    def _run(self, label: str, model: Model, durable: bool, call: Callable[[], Any]) -> None:
        history = self.history
        start = self.sim.ops
        before, now = history.durable, self.clock.now
        history.begin(label, model)
        call()
        history.ack(durable=durable)
        self.marks.append(
            Mark(label, start, self.sim.ops, history.acked - 1, before, history.durable, now)
        )

    def crash_points(self) -> Iterator[tuple[int, Bounds, Bounds, str, bool]]:
        """Every journal position with its (process, power) bounds, a description, and
        whether it is inside an action (its last operation may be torn)."""
        position = 0
        acked, durable, now = self.history.acked, self.history.durable, self.clock.now
        if self.marks:
            first = self.marks[0]
            acked, durable, now = first.acked, first.durable_before, first.now
        for mark in self.marks:
            while position < mark.end:
                inside = position > mark.start
                high = mark.acked + (1 if inside else 0)
                where = f"inside {mark.action!r} after {position - mark.start} ops"
                if not inside:
                    where = f"before {mark.action!r}"
                yield (
                    position,
                    Bounds(mark.acked, high, mark.now),
                    Bounds(mark.durable_before, high, mark.now),
                    where,
                    inside,
                )
                position += 1
            acked, durable, now = mark.acked + 1, mark.durable_after, mark.now
        yield position, Bounds(acked, acked, now), Bounds(durable, acked, now), "at the end", False


def _commit(db: Engine, staged: list[tuple[bytes, bytes | None]]) -> None:
    with db.batch() as batch:
        for key, value in staged:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
