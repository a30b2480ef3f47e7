"""``Options``: the store-level settings of a ``Store``, immutable once built."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Final

from engine.options import SYNC_MODES, SyncMode

#: The database and the table a call uses when it names none (go-micro's default).
DEFAULT_NAMESPACE: Final = "micro"
DEFAULT_DATABASE: Final = DEFAULT_NAMESPACE
DEFAULT_TABLE: Final = DEFAULT_NAMESPACE


@dataclass(frozen=True)
class Options:
    """What a store was configured with (go-micro's ``store.Options``).

    * ``nodes``: addresses of the backing service. ``LogStore`` is embedded, so it
      takes a single node as its directory when ``path`` is not given.
    * ``database`` / ``table``: the namespace used when a call passes none
      (an empty string here means the default, ``"micro"``).
    * ``path``: the store directory (``None``: the per-user default directory).
    * ``sync`` / ``sync_interval``: when writes reach the disk (see STORE_API.md).
    * ``engine_options``: passed unchanged to ``engine.Engine.open`` (``clock``,
      ``segment_size``, ``max_key_size``, ``max_value_size``, ``fs`` ...).
    """

    nodes: tuple[str, ...] = ()
    database: str = DEFAULT_DATABASE
    table: str = DEFAULT_TABLE
    path: str | None = None
    sync: SyncMode = "periodic"
    sync_interval: float = 1.0
    engine_options: Mapping[str, Any] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        nodes: Any = self.nodes
        if isinstance(nodes, str):
            nodes = (nodes,)
        elif isinstance(nodes, Iterable):
            nodes = tuple(nodes)
        else:
            raise TypeError(f"nodes must be a sequence of str, not {type(nodes).__name__}")
        if not all(isinstance(node, str) for node in nodes):
            raise TypeError("nodes must be a sequence of str")
        set_(self, "nodes", nodes)
        for name in ("database", "table"):
            value = getattr(self, name)
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, not {type(value).__name__}")
        set_(self, "database", self.database or DEFAULT_DATABASE)
        set_(self, "table", self.table or DEFAULT_TABLE)
        if self.path is not None:
            path: Any = self.path
            if not isinstance(path, str | os.PathLike):
                raise TypeError(f"path must be str or os.PathLike, not {type(path).__name__}")
            set_(self, "path", os.fspath(path))
        if self.sync not in SYNC_MODES:
            raise ValueError(f"sync must be one of {SYNC_MODES}, not {self.sync!r}")
        interval: Any = self.sync_interval
        if (
            isinstance(interval, bool)
            or not isinstance(interval, int | float)
            or not math.isfinite(interval)
            or interval <= 0
        ):
            raise ValueError(f"sync_interval must be a positive number, not {interval!r}")
        if not isinstance(self.engine_options, Mapping):
            raise TypeError("engine_options must be a mapping")
        set_(self, "engine_options", MappingProxyType(dict(self.engine_options)))

    def merge(self, **changes: Any) -> Options:
        """A copy with ``changes`` applied: known fields replace, others join ``engine_options``.

        ``engine_options=`` itself merges key by key rather than replacing.
        """
        own = {f.name for f in fields(self)} - {"engine_options"}
        engine = dict(self.engine_options)
        engine.update(changes.pop("engine_options", None) or {})
        mine = {name: value for name, value in changes.items() if name in own}
        engine.update({name: value for name, value in changes.items() if name not in own})
        return replace(self, **mine, engine_options=engine)
