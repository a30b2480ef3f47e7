"""seglog's storage engine: an append-only segment log with an in-memory sorted index.

>>> import tempfile
>>> from engine import Engine
>>> with tempfile.TemporaryDirectory() as path, Engine.open(path) as db:
...     db.put(b"greeting", b"hello")
...     db.get(b"greeting")
b'hello'
"""

from engine.batch import Batch
from engine.checkpoint import CheckpointReport, IncompleteCheckpointError
from engine.compaction import CancelledError, CompactionReport
from engine.engine import Engine
from engine.errors import (
    ClosedError,
    CorruptionError,
    DiskFullError,
    FailedError,
    LockedError,
    ReadOnlyError,
    StorageError,
)
from engine.options import SyncMode
from engine.recovery import RecoveryMode
from engine.stats import CompactionStats, EngineStats, RecoveryStats, SegmentStats

__all__ = [
    "Batch",
    "CancelledError",
    "CheckpointReport",
    "ClosedError",
    "CompactionReport",
    "CompactionStats",
    "CorruptionError",
    "DiskFullError",
    "Engine",
    "EngineStats",
    "FailedError",
    "IncompleteCheckpointError",
    "LockedError",
    "ReadOnlyError",
    "RecoveryMode",
    "RecoveryStats",
    "SegmentStats",
    "StorageError",
    "SyncMode",
]
