"""Registry of the stores ``seglog bench`` can drive, in display order.

Adding a store is one module with an :class:`~benchmarks.adapters.base.Adapter`
subclass plus one line here.
"""

from __future__ import annotations

import importlib

from benchmarks.adapters.base import Adapter

#: name -> "module:Class", imported only when asked for, so a missing peer costs nothing.
_REGISTRY: dict[str, str] = {
    "seglog": "benchmarks.adapters.seglog_engine:EngineAdapter",
    "seglog-store": "benchmarks.adapters.seglog_store:LogStoreAdapter",
    "plyvel": "benchmarks.adapters.peer_plyvel:PlyvelAdapter",
    "semidbm": "benchmarks.adapters.peer_semidbm:SemidbmAdapter",
    "rocksdict": "benchmarks.adapters.peer_rocksdict:RocksdictAdapter",
    "lmdb": "benchmarks.adapters.peer_lmdb:LmdbAdapter",
    "sqlite": "benchmarks.adapters.peer_sqlite:SqliteAdapter",
    "diskcache": "benchmarks.adapters.peer_diskcache:DiskcacheAdapter",
    "dbm": "benchmarks.adapters.peer_dbm:DbmAdapter",
}

#: The store every ratio is computed against.
BASELINE = "seglog"


def store_names() -> list[str]:
    """Every store the benchmark knows, installed or not."""
    return list(_REGISTRY)


def adapter_class(name: str) -> type[Adapter]:
    """The adapter class for ``name``; KeyError if unknown."""
    module_name, _, class_name = _REGISTRY[name].partition(":")
    cls: type[Adapter] = getattr(importlib.import_module(module_name), class_name)
    return cls
