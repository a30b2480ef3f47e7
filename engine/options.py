"""Engine options: their defaults and the checks that run before anything touches disk."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Literal

from engine.format import FILE_HEADER_SIZE, MAX_KEY_SIZE, MAX_VALUE_SIZE
from engine.recovery import RECOVERY_MODES, RecoveryMode

SyncMode = Literal["always", "periodic", "none"]
#: The sync modes, strongest first (docs/DURABILITY.md says what each promises).
SYNC_MODES: Final[tuple[SyncMode, ...]] = ("always", "periodic", "none")

#: 64 MiB: few files even for a large store, small enough to compact one at a time.
DEFAULT_SEGMENT_SIZE: Final = 64 << 20
DEFAULT_MAX_KEY_SIZE: Final = 64 << 10
DEFAULT_MAX_VALUE_SIZE: Final = 16 << 20


@dataclass(frozen=True)
class EngineOptions:
    """How an engine syncs, sizes its files, bounds its records and recovers."""

    sync: SyncMode = "periodic"
    sync_interval: float = 1.0
    clock: Callable[[], float] = field(default=time.time)
    segment_size: int = DEFAULT_SEGMENT_SIZE
    max_key_size: int = DEFAULT_MAX_KEY_SIZE
    max_value_size: int = DEFAULT_MAX_VALUE_SIZE
    recovery: RecoveryMode = "tolerate_corrupted_tail"

    def __post_init__(self) -> None:
        if self.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {self.sync!r}")
        if self.recovery not in RECOVERY_MODES:
            raise ValueError(f"recovery must be one of {RECOVERY_MODES}, not {self.recovery!r}")
        if not callable(self.clock):
            raise TypeError("clock must be a callable returning seconds")
        interval = self.sync_interval
        if isinstance(interval, bool) or not isinstance(interval, int | float):
            raise TypeError(f"sync_interval must be a number, not {type(interval).__name__}")
        if not 0 < interval < math.inf:
            raise ValueError(f"sync_interval must be positive and finite, not {interval!r}")
        for name, low, high in (
            ("max_key_size", 1, MAX_KEY_SIZE),
            ("max_value_size", 0, MAX_VALUE_SIZE),
            ("segment_size", FILE_HEADER_SIZE + 1, 1 << 40),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, not {type(value).__name__}")
            if not low <= value <= high:
                raise ValueError(f"{name} must be in [{low}, {high}], not {value}")
