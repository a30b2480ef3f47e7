"""A read-only engine that follows a store another process owns (docs/MULTIPROCESS.md).

``Engine.open(path, readonly=True)`` returns a ``Follower``. It takes no lock
and writes nothing, not even on open. Every read first makes a cheap check
(the active file's size, and the type byte after the last applied unit) and
catches up (``engine.catchup``) only when something changed; a new manifest
(the owner compacted) is adopted by loading a fresh view and swapping it in.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Final, NoReturn, cast

from engine.batch import Batch
from engine.catchup import View, manifest_identity, read_manifest
from engine.checkpoint import CheckpointReport, Progress, Reuse
from engine.compaction import CompactionOptions, CompactionReport
from engine.engine import Engine
from engine.errors import ClosedError, ReadOnlyError, opening_failed
from engine.fs import FileSystem, Lock, Mapping, OSFileSystem, SharedFileSystem
from engine.options import EngineOptions
from engine.stats import EngineStats

#: How often a reader that is catching up anyway compares the manifest (seconds).
MANIFEST_CHECK_INTERVAL: Final = 1.0


class _Unlocked:
    """A reader holds no lock: this stands in for the owner's, to mark the store open."""

    def release(self) -> None:
        pass


class Follower(Engine):
    """An ``Engine`` over a store another process may own: it reads, caught up before each call.

    Writes, compaction, checkpoints and ``sync`` raise ``ReadOnlyError``.
    """

    def __init__(
        self,
        directory: str,
        options: EngineOptions,
        fs: SharedFileSystem,
        lock: Lock | None = None,
    ) -> None:
        compaction = CompactionOptions(auto=False)
        owner = lock if lock is not None else _Unlocked()
        super().__init__(directory, fs, owner, options, compaction)
        self._fs = fs
        self.options = options
        self.clock = options.clock
        #: Held while the view moves (catch-up, adoption); a shared engine holds it
        #: across an append too (``engine.shared``).
        self._follow = threading.RLock()
        self._manifest_checked = time.monotonic()
        view = View(fs, self.path, self._options.recovery, self._clock())
        view.catch_up(self._writer.lock, self._clock())
        self._view = view
        self._tail = view.tail
        self._install(view)

    def _install(self, view: View) -> None:
        """Serve ``view`` from now on (its catch-up is at least as far as the last one's)."""
        writer = self._writer
        with writer.lock:
            self._keyspace = view.keyspace
            self._bind_keyspace()
            writer.maps = self._maps = view.maps
            writer.sealed_sizes = view.sealed_sizes
            self._recovery = view.report
            self._view = view
            self._follow_tail(view)

    def _follow_tail(self, view: View) -> None:
        tail = self._tail = view.tail
        self._seq = view.seq
        self._writer.active_id = tail.segment_id
        self._writer.tail = tail.known_end

    def _refresh(self, *, adopt: bool = False) -> None:
        """Catch up; adopt a new manifest if the owner compacted (see MULTIPROCESS.md).

        ``adopt`` compares the manifest now instead of once a second.
        """
        with self._follow:
            if self.closed:
                raise ClosedError(f"{self.path}: the store is closed")
            view = self._view
            if self._idle(view) and not adopt:
                return
            live = view.catch_up(self._writer.lock, self._clock())
            with self._writer.lock:
                self._follow_tail(view)
            recently = time.monotonic() - self._manifest_checked < MANIFEST_CHECK_INTERVAL
            if live and recently and not adopt:
                return
            self._manifest_checked = time.monotonic()
            if not self._new_manifest(view):
                return
            fresh = View(self._fs, self.path, self._options.recovery, self._clock())
            fresh.catch_up(self._writer.lock, self._clock())
            self._install(fresh)
            view.close()

    def _idle(self, view: View) -> bool:
        """Whether a followed file that ends where the reader is still is all there is:
        it did not grow, no next segment, no new manifest (the owner closed the store,
        died, or filled the file exactly). Three system calls instead of a catch-up."""
        tail = view.tail
        if tail.known_end != tail.size or tail.file.size() != tail.size:
            return False
        if self._fs.exists(tail.next_path):
            return False
        return not self._new_manifest(view)

    def _new_manifest(self, view: View) -> bool:
        """Whether ``MANIFEST`` differs from the one ``view`` was loaded from."""
        identity = manifest_identity(self._fs, self.path)
        if identity == view.identity:
            return False
        if read_manifest(self._fs, self.path) != view.manifest:
            return True
        view.identity = identity
        return False

    def _check(self) -> None:
        """The cheap check: catch up only if the active file's size or next type byte moved."""
        tail = self._tail
        try:
            if tail.file.size() == tail.size and tail.peek >= 0 and not tail.map[tail.peek]:
                return
        except OSError:
            pass  # closed, or the view changed under this thread: _refresh says which
        self._refresh()

    # ------------------------------------------------------------------ reading

    def get(self, key: bytes) -> bytes | None:
        # ``_check``, inlined with local names: this is the random-read hot path.
        tail = self._tail
        try:
            if tail.file.size() != tail.size or tail.peek < 0 or tail.map[tail.peek]:
                self._refresh()
        except OSError:
            self._refresh()
        return _engine_get(self, key)

    def get_entry(self, key: bytes) -> tuple[bytes, float | None] | None:
        self._check()
        return Engine.get_entry(self, key)

    def __contains__(self, key: object) -> bool:
        self._check()
        return Engine.__contains__(self, key)

    def __len__(self) -> int:
        self._check()
        return Engine.__len__(self)

    def _snapshot(
        self, prefix: object, start: object, end: object, reverse: bool, limit: object
    ) -> tuple[list[bytes], list[int], dict[int, Mapping]]:
        self._check()
        return Engine._snapshot(self, prefix, start, end, reverse, limit)

    def stats(self) -> EngineStats:
        self._check()
        return Engine.stats(self)

    # ------------------------------------------------------------------ writing

    def put(
        self,
        key: bytes,
        value: bytes,
        *,
        ttl: float | None = None,
        expires_at: float | None = None,
    ) -> None:
        _refuse(self.path)

    def delete(self, key: bytes) -> None:
        _refuse(self.path)

    def batch(self) -> Batch:
        _refuse(self.path)

    def compact(self) -> CompactionReport:
        _refuse(self.path)

    def checkpoint(
        self,
        dest: str | os.PathLike[str],
        *,
        link: bool = True,
        reuse: Reuse | None = None,
        progress: Progress | None = None,
    ) -> CheckpointReport:
        _refuse(self.path)

    def sync(self) -> None:
        _refuse(self.path)

    def close(self) -> None:
        """Drop the mappings and descriptors; closing twice is harmless. Nothing is written."""
        with self._follow:
            if self._owner_lock is None:
                return
            self._owner_lock = None
            writer = self._writer
            with writer.lock:
                writer.error = ClosedError(f"{self.path}: the store is closed")
                writer.maps = self._maps = {}
            self._view.close()


_engine_get: Final = Engine.get


def _refuse(path: str) -> NoReturn:
    raise ReadOnlyError(f"{path}: the store is open read-only (readonly=True); nothing was written")


def shared_fs(fs: FileSystem | None, option: str) -> SharedFileSystem:
    """``fs``, or the real file system; a ``SharedFileSystem`` is needed for ``option``."""
    if fs is None:
        return OSFileSystem()
    if not all(hasattr(fs, name) for name in ("open_reading", "identity", "process_lock")):
        raise ValueError(f"{option} needs a SharedFileSystem (OSFileSystem, MemoryFileSystem)")
    return cast(SharedFileSystem, fs)


def open_follower(directory: str, options: EngineOptions, fs: FileSystem | None) -> Follower:
    """``Engine.open(directory, readonly=True)``: a reader beside the store's owner."""
    filesystem = shared_fs(fs, "readonly=True")
    try:
        return Follower(directory, options, filesystem)
    except OSError as exc:
        raise opening_failed(directory, exc) from exc
