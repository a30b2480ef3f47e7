"""The actions of seglog's crash workloads, and the pieces every workload shares.

An ``Action`` is one call a workload makes (put, put with a TTL, delete,
batch, sync, clock advance, reopen, compact); ``vocabulary`` lists the ones
the exhaustive tier combines and ``workloads`` every sequence of them. The
``Driver`` (``engine.testing.driver``) runs them; the ``Checker``
(``engine.testing.checker``) crashes them at every file operation.

>>> [str(action) for action in vocabulary([b"a"], compact=False)]
['put a', 'put_ttl a', 'delete a', 'sync', 'advance', 'reopen']
>>> len(list(workloads(vocabulary([b"a"], compact=False), 2)))  # 1 + 6 + 36 sequences
43
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

from engine.engine import Engine
from engine.fs import FileSystem

PATH: Final = "/db"
#: Record sizes are chosen so that two puts (56 bytes each) fill a segment exactly:
#: rollovers happen early, and the write after a recovery lands in a new segment.
SEGMENT_SIZE: Final = 128
VALUE_SIZE: Final = 44
TTL: Final = 5.0
ADVANCE: Final = 10.0
#: The write after recovery: the same size as a workload's put, so that it lands exactly
#: where a put recovery dropped had been (and a tail recovery failed to cut shows).
PROBE_KEY: Final = b"z"
PROBE_VALUE: Final = b"after recovery".ljust(VALUE_SIZE, b".")

#: Wraps the file system the engine sees (the mutation tier's interceptor).
Wrap = Callable[[FileSystem], FileSystem]


def open_engine(path: str, fs: FileSystem, **options: Any) -> Engine:
    """``Engine.open`` with no background work the simulation cannot schedule.

    Automatic compaction is switched off: compaction runs as an explicit
    ``compact`` action instead, at a known point.
    """
    options.setdefault("auto_compact", False)
    return Engine.open(path, fs=fs, **options)


@dataclass(frozen=True)
class Action:
    """One call of a workload. Values are made unique when the action runs."""

    kind: str
    key: bytes = b""
    #: For a batch: (key, is_put) pairs.
    items: tuple[tuple[bytes, bool], ...] = ()

    def __str__(self) -> str:
        if self.kind == "batch":
            return (
                "batch(" + " ".join(f"{'+' if p else '-'}{k.decode()}" for k, p in self.items) + ")"
            )
        return f"{self.kind} {self.key.decode()}" if self.key else self.kind


def vocabulary(
    keys: Sequence[bytes] = (b"a", b"b"), *, compact: bool = True, batch: bool = False
) -> list[Action]:
    """The actions of the exhaustive tier: every write kind on every key, and the rest."""
    actions = [Action(kind, key) for kind in ("put", "put_ttl", "delete") for key in keys]
    actions += [Action("sync"), Action("advance"), Action("reopen")]
    if compact:
        actions.append(Action("compact"))
    if batch:
        actions.append(Action("batch", items=((keys[0], True), (keys[-1], False))))
    return actions


def workloads(actions: Sequence[Action], max_length: int) -> Iterator[tuple[Action, ...]]:
    """Every sequence of ``actions`` of length 0 to ``max_length``."""
    for length in range(max_length + 1):
        yield from itertools.product(actions, repeat=length)


def read_store(db: Engine, keys: Iterable[bytes]) -> dict[bytes, bytes]:
    """What the store shows: a full scan, cross-checked key by key with ``get``."""
    contents = dict(db.scan())
    for key in set(keys) | set(contents):
        got = db.get(key)
        if got != contents.get(key):
            raise AssertionError(f"get({key!r}) = {got!r} but scan shows {contents.get(key)!r}")
    return contents


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Silence seglog's recovery warnings while thousands of crash states are opened."""
    logger = logging.getLogger("seglog")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)
