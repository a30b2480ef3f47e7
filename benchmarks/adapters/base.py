"""The one interface every benchmarked store is driven through.

An adapter opens one store in one directory, configured for one of seglog's sync
modes, and exposes the thinnest callables a user of that store would write:
``put``, ``get`` and ``delete`` are bound methods or one-line closures, set by
:meth:`Adapter.open`, so the harness adds no layer of its own to the timed loops.

Durability is declared, not assumed: :meth:`Adapter.durability` says how the
store is configured for a mode and whether that equals seglog's guarantee
(:class:`Level`). ``None`` means the store cannot offer the mode at all.
"""

from __future__ import annotations

import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeAlias

# Re-exported: the benchmark modules name the engine's sync modes from here.
from engine.options import SYNC_MODES as SYNC_MODES
from engine.options import SyncMode as SyncMode

#: What each mode promises when a write returns (STORE_API.md, "Sync modes").
MODE_PROMISE: dict[SyncMode, str] = {
    "always": "fsynced before it returns: it survives power loss",
    "periodic": "handed to the OS before it returns (it survives a process crash) "
    "and fsynced within sync_interval",
    "none": "kept in the process until sync() or close: nothing survives a crash "
    "until sync() returns",
}


class Level(StrEnum):
    """How a peer's configuration for a mode compares with seglog's promise."""

    MATCH = "match"
    """The store's own setting gives the same guarantee."""
    EMULATED = "emulated"
    """Same guarantee, reached by calling the store's own flush/fsync API per write,
    as its users would have to."""
    STRONGER = "stronger"
    """The store has no setting this weak; it runs its nearest stronger one."""
    WEAKER = "weaker"
    """The store cannot give this guarantee; it runs its nearest weaker setting."""


@dataclass(frozen=True, slots=True)
class Durability:
    """How a store is configured for one sync mode, and how honest a match it is."""

    level: Level
    how: str


Put: TypeAlias = Callable[[Any, bytes], object]
Get: TypeAlias = Callable[[Any], "bytes | None"]
Delete: TypeAlias = Callable[[Any], object]


class Adapter(ABC):
    """One store, one directory, one sync mode.

    Subclasses set the class attributes, implement the abstract methods, and
    assign :attr:`put`, :attr:`get` and :attr:`delete` in :meth:`open`.
    """

    #: Short name used on the command line, in tables and in JSON.
    name: ClassVar[str]
    #: Importable module whose absence means the store is not installed.
    module: ClassVar[str]
    #: The index lives in Python objects, so tracemalloc sees its memory.
    python_index: ClassVar[bool] = False
    #: Keys are kept in order, so a prefix scan is a range read, not a full scan.
    ordered: ClassVar[bool] = True
    #: Whether the store keeps its data under ``path`` (a server's data lives elsewhere).
    local_files: ClassVar[bool] = True
    #: put/get/delete may be called from several threads at once; an adapter
    #: whose answer depends on the sync mode sets it on the instance in open().
    threadsafe: bool = False
    #: In "periodic" mode the store fsyncs by itself; otherwise the harness calls
    #: :meth:`sync` every sync_interval while writing, which is what makes the
    #: peer's "periodic" equal seglog's.
    self_syncing: ClassVar[bool] = False

    put: Put
    get: Get
    delete: Delete

    def __init__(self, path: str, sync: SyncMode) -> None:
        self.path = path
        self.sync_mode: SyncMode = sync

    @classmethod
    def missing(cls) -> str | None:
        """Why this store cannot run here (not installed), or ``None``."""
        try:
            __import__(cls.module)
        except ImportError as exc:
            return f"not installed ({exc})"
        return None

    @classmethod
    def version(cls) -> str:
        """The version of the store's library, for the report."""
        mod = __import__(cls.module)
        return str(getattr(mod, "__version__", "?"))

    @classmethod
    @abstractmethod
    def durability(cls, sync: SyncMode) -> Durability | None:
        """How this store is configured for ``sync``; ``None`` if it cannot be."""

    def key(self, raw: bytes) -> Any:
        """The key as this store's users pass it (converted before timing starts)."""
        return raw

    @abstractmethod
    def open(self) -> None:
        """Open (or create) the store at :attr:`path` and set put/get/delete."""

    @abstractmethod
    def close(self) -> None:
        """Close the store, releasing its files."""

    @abstractmethod
    def sync(self) -> None:
        """Make every write so far durable (fsynced)."""

    def scan_prefix(self, prefix: bytes) -> int:
        """Read every (key, value) whose key starts with ``prefix``; return how many."""
        raise NotImplementedError(f"{self.name} keeps no key order")

    def scan(self, start: Any, count: int) -> int:
        """Read up to ``count`` (key, value) pairs in key order from the first key
        at or after ``start`` (YCSB's scan, workload E); return how many."""
        raise NotImplementedError(f"{self.name} keeps no key order")

    @classmethod
    def can_scan(cls) -> bool:
        """Whether the store implements :meth:`scan` (stores without key order do not)."""
        return cls.scan is not Adapter.scan

    def counters(self) -> dict[str, int]:
        """Store-reported counters (e.g. ``fsyncs``, ``writes``), if it has any."""
        return {}

    def locked(self) -> Put:
        """``put`` made safe for several threads: itself if the store is thread-safe,
        otherwise wrapped in one lock, as a user of the store would have to."""
        if self.threadsafe:
            return self.put
        lock = threading.Lock()
        put = self.put

        def locked_put(key: Any, value: bytes) -> object:
            with lock:
                return put(key, value)

        return locked_put


def fsync_paths(paths: Iterable[str]) -> None:
    """fsync each existing file in ``paths`` and then their directories."""
    dirs: set[str] = set()
    for path in paths:
        if not os.path.exists(path):
            continue
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        dirs.add(os.path.dirname(path) or ".")
    for directory in dirs:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix``."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
