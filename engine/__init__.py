"""seglog's storage engine: an append-only segment log with an in-memory sorted index.

>>> from engine import Engine
>>> with Engine.open("/tmp/example-store") as db:  # doctest: +SKIP
...     db.put(b"greeting", b"hello")
...     db.get(b"greeting")
b'hello'
"""

from engine.batch import Batch
from engine.checkpoint import CheckpointReport, IncompleteCheckpointError
from engine.engine import Engine
from engine.errors import ClosedError, CorruptionError, FailedError, LockedError, StorageError
from engine.options import EngineOptions, SyncMode
from engine.recovery import RecoveryMode

__all__ = [
    "Batch",
    "CheckpointReport",
    "ClosedError",
    "CorruptionError",
    "Engine",
    "EngineOptions",
    "FailedError",
    "IncompleteCheckpointError",
    "LockedError",
    "RecoveryMode",
    "StorageError",
    "SyncMode",
]
