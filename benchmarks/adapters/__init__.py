"""Registry of the stores ``seglog bench`` can drive, in display order.

Adding a store to seglog's own list is one module with an
:class:`~benchmarks.adapters.base.Adapter` subclass plus one line here. Anyone
else's store needs neither: ``seglog bench --adapter package.module:Class`` loads
its adapter by import path, and a package can register one under the entry-point
group :data:`ENTRY_POINT_GROUP` (``name = "package.module:Class"``), after which
``--stores name`` finds it. docs/BENCHMARKS.md ("Benchmarking your own store")
shows a complete adapter.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from benchmarks.adapters.base import Adapter

#: name -> "module:Class", imported only when asked for, so a missing peer costs nothing.
_REGISTRY: dict[str, str] = {
    "seglog": "benchmarks.adapters.seglog_engine:EngineAdapter",
    "seglog-store": "benchmarks.adapters.seglog_store:LogStoreAdapter",
    "postgres-store": "benchmarks.adapters.postgres_store:PostgresStoreAdapter",
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

#: Entry-point group under which other packages register their adapters.
ENTRY_POINT_GROUP = "seglog.bench_adapters"


def _plugins() -> dict[str, str]:
    """name -> "module:Class" of every adapter registered by an installed package."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def store_names() -> list[str]:
    """Every store the benchmark knows, installed or not: seglog's list, then plugins."""
    return list(_REGISTRY) + [n for n in _plugins() if n not in _REGISTRY]


def adapter_class(ref: str) -> type[Adapter]:
    """The adapter class for a store name, a plugin's name, or ``"module:Class"``.

    Raises ValueError for a name nobody registered or an import path that does not
    lead to an Adapter subclass (ImportError if its module cannot be imported).
    """
    path = _REGISTRY.get(ref) or _plugins().get(ref) or ref
    module_name, colon, class_name = path.partition(":")
    if not colon or not module_name or not class_name:
        known = ", ".join(store_names())
        raise ValueError(f"unknown store {ref!r}: not one of {known}, nor a module:Class path")
    cls = getattr(importlib.import_module(module_name), class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise ValueError(f"{path} is not a subclass of benchmarks.adapters.base.Adapter")
    if not isinstance(getattr(cls, "name", None), str) or not isinstance(
        getattr(cls, "module", None), str
    ):
        raise ValueError(f"{path} must set the class attributes name and module (strings)")
    return cls
