"""Compaction of a store several processes write (``engine.shared``): one process at a time.

A compaction takes the store's ``COMPACT`` lock, or skips its turn if another
process holds it. Holding it, the engine seals its active segment (for an
explicit compaction) and adopts the newest manifest, so the compaction starts
from every process's records and the ids the last compaction used; the steps
are then ``Compactor``'s. The other processes adopt the new manifest as
readers do (docs/MULTIPROCESS.md, "Compaction").
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.compaction.compactor import Compactor
from engine.compaction.output import CompactionReport
from engine.compaction.policy import Chooser
from engine.fs import ProcessLock


class SharedCompactor(Compactor):
    """A ``Compactor`` that runs only while its process holds the store's compaction lock."""

    def __init__(
        self, lock: ProcessLock, prepare: Callable[[bool], None], *args: Any, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.lock = lock
        #: Called with the lock held: seal the active segment (if True), adopt the manifest.
        self.prepare = prepare

    def compact(
        self, choose: Chooser | None = None, trigger: str = "explicit"
    ) -> CompactionReport | None:
        """Run one compaction if no other process is compacting; None if it did nothing."""
        if not self.lock.try_acquire():
            return None
        try:
            self.prepare(choose is None)
            return super().compact(choose if choose is not None else self._everything, trigger)
        finally:
            self.lock.release()

    def _everything(self, sealed: dict[int, int]) -> list[int]:
        """What an explicit compaction rewrites: every sealed segment, if any holds dead bytes."""
        if any(self.keyspace.dead_bytes(i) for i in sealed):
            return sorted(sealed)
        return []

    def shutdown(self) -> None:
        super().shutdown()
        self.lock.close()
