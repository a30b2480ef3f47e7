"""``LogStore``: the ``Store`` interface over the seglog engine.

Each record is one engine entry: the key is ``keys.encode_key`` of (database,
table, key), the value is ``codec.encode`` of value, metadata and absolute
expiry, and the expiry is also handed to the engine so that it hides and
compacts expired records itself. Point reads and writes are one engine call
each; prefix queries and ``list`` are range scans of the engine's sorted index;
suffix queries use an in-memory ``SuffixIndex`` per table (see docs/STORE_API.md
for why, and for the figures).

A disconnected store reconnects by itself on the next operation, as go-micro's
local stores do; ``disconnect`` is how to release the directory for a while.
"""

from __future__ import annotations

import builtins
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Final

from engine import CheckpointReport, Engine, SyncMode
from store_api import codec, rules
from store_api.interface import Store
from store_api.keys import (
    ESCAPED_NUL,
    NUL,
    RECORD_TAG,
    encode_key,
    namespace,
    split_key,
    to_bytes,
)
from store_api.options import DEFAULT_DATABASE, DEFAULT_TABLE, Options
from store_api.paths import default_dir
from store_api.ranges import TableSuffixes, decode_record, prefix_keys, prefix_records
from store_api.record import FOREVER, NotFoundError, Record

_PLAIN: Final = codec.PLAIN
_new_record: Final = object.__new__
#: The default of the ``database``/``table`` arguments; CPython has one empty str, so an
#: identity test spots an omitted argument cheaply (anything else takes the checked path).
_EMPTY: Final = ""
_FLOAT_MAX: Final = sys.float_info.max
#: Options whose change needs the engine reopened (the rest are read per call).
_ENGINE_FIELDS: Final = ("path", "nodes", "sync", "sync_interval", "engine_options")
#: Namespace prefixes cached per (database, table) argument pair, up to this many.
_SPACE_CACHE_SIZE: Final = 4096


class LogStore(Store):
    """A ``Store`` kept in one seglog engine directory.

    ``path`` is the directory (created if missing); without it a single entry of
    ``nodes`` is used, else the per-user default directory (``default_dir()``).
    ``database`` and ``table`` are the defaults for calls that pass none.
    ``sync`` and ``sync_interval`` choose durability (STORE_API.md, "Sync
    modes"). Any other keyword, e.g. ``clock=`` or ``segment_size=``, goes to
    ``engine.Engine.open``; ``clock`` also drives expiry here, so a fake clock
    in tests moves both together. The directory is opened at construction, so a
    path held by another store fails fast with ``engine.LockedError``, unless
    ``connect=False`` leaves that to the first ``connect()`` (or operation).
    ``readonly=True`` opens a store another process may own, without its lock:
    reads catch up with that process's writes, ``write`` and ``delete`` raise
    ``ReadOnlyError`` (``engine.follower``). ``shared=True`` opens it as one of
    several processes that read and write it at once (``engine.shared``).
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        database: str = DEFAULT_DATABASE,
        table: str = DEFAULT_TABLE,
        sync: SyncMode = "periodic",
        sync_interval: float = 1.0,
        nodes: tuple[str, ...] = (),
        connect: bool = True,
        **engine_options: Any,
    ) -> None:
        options = Options().merge(
            path=path,
            database=database,
            table=table,
            sync=sync,
            sync_interval=sync_interval,
            nodes=nodes,
            **engine_options,
        )
        self._options = options.merge(path=_directory(options))
        self._state_lock = threading.RLock()
        self._db: Engine | None = None
        # The hot paths call these bound methods directly; while disconnected they
        # point at methods that reconnect first (see connect/disconnect).
        self._get: Callable[[bytes], bytes | None] = self._get_reconnecting
        self._put: Callable[[bytes, bytes], None] = self._put_reconnecting
        self._spaces: dict[tuple[str, str], str] = {}
        self._suffixes = TableSuffixes()
        self._clock: Callable[[], float] = time.time
        self._default_space = ""
        self._configure()
        if connect:
            self.connect()

    # -- lifecycle ---------------------------------------------------------

    def _configure(self) -> None:
        """Derive per-call state from the options."""
        self._clock = self._options.engine_options.get("clock", time.time)
        self._spaces = {}
        self._default_space = namespace(self._options.database, self._options.table)

    def connect(self) -> None:
        """Open the engine directory unless already open; ``LockedError`` if another holds it."""
        with self._state_lock:
            if self._db is not None:
                return
            options = self._options
            db = Engine.open(
                _directory(options),
                sync=options.sync,
                sync_interval=options.sync_interval,
                **options.engine_options,
            )
            self._db = db
            self._get = db.get
            self._put = db.put

    def disconnect(self) -> None:
        """Flush and close the engine, releasing the directory lock; idempotent."""
        with self._state_lock:
            db, self._db = self._db, None
            self._get = self._get_reconnecting
            self._put = self._put_reconnecting
            self._suffixes.clear()
            if db is not None:
                db.close()

    def checkpoint(self, dest: str | os.PathLike[str]) -> CheckpointReport:
        """Copy the store as of this instant into the new directory ``dest``; writes go on.

        ``Engine.checkpoint``: sealed files hard linked (copied on another
        file system), the active segment copied up to the last write. ``dest``
        opens as a ``LogStore`` holding exactly the writes up to the report's
        ``sequence``; a copy cut short is marked and refused by open.
        Reconnects first if disconnected.
        """
        return self._reconnect().checkpoint(dest)

    @property
    def connected(self) -> bool:
        """Whether the engine is open right now."""
        return self._db is not None

    def _reconnect(self) -> Engine:
        """The engine, reopened if the store was disconnected."""
        self.connect()
        db = self._db
        if db is None:  # pragma: no cover - only if another thread disconnects at once
            raise RuntimeError("store was disconnected while reconnecting")
        return db

    def _get_reconnecting(self, key: bytes) -> bytes | None:
        """``Engine.get`` after reconnecting (the hot path's target while disconnected)."""
        return self._reconnect().get(key)

    def _put_reconnecting(self, key: bytes, value: bytes) -> None:
        """``Engine.put`` after reconnecting (the hot path's target while disconnected)."""
        self._reconnect().put(key, value)

    def init(self, **options: Any) -> None:
        """Merge ``options``; reopen the engine if a storage option changed while connected.

        Bad options raise before anything changes. If the reopen fails, the old
        options are restored (and reopened) before the error propagates.
        """
        with self._state_lock:
            old = self._options
            if "nodes" in options and "path" not in options:
                options["path"] = None  # new nodes name the directory unless a path is given
            new = old.merge(**options)
            if new.path is None:
                new = new.merge(path=_directory(new))
            reopen = self._db is not None and any(
                getattr(old, name) != getattr(new, name) for name in _ENGINE_FIELDS
            )
            if reopen:
                self.disconnect()
            self._options = new
            self._configure()
            if reopen:
                try:
                    self.connect()
                except BaseException:
                    self._options = old
                    self._configure()
                    self.connect()
                    raise

    def options(self) -> Options:
        """The options in force (immutable)."""
        return self._options

    def __str__(self) -> str:
        return "seglog"

    def __repr__(self) -> str:
        options = self._options
        state = "connected" if self._db is not None else "disconnected"
        return (
            f"LogStore({options.path!r}, database={options.database!r}, "
            f"table={options.table!r}, sync={options.sync!r}) <{state}>"
        )

    # -- namespaces --------------------------------------------------------

    def _space(self, database: str, table: str) -> str:
        """The namespace text of (database, table), empty names falling back to the options."""
        space = namespace(*rules.names(self._options, database, table))
        if len(self._spaces) >= _SPACE_CACHE_SIZE:
            self._spaces = {}
        self._spaces[database, table] = space
        return space

    # -- write and delete --------------------------------------------------

    def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Upsert ``record``; every check runs before the engine is touched."""
        if type(record) is not Record and not isinstance(record, Record):
            raise TypeError(f"record must be a Record, not {type(record).__name__}")
        key = record.key
        if type(key) is not str or not key:
            rules.refuse_key(key)
        value = record.value
        if type(value) is not bytes:
            value = rules.as_bytes(value)
        if database is _EMPTY and table is _EMPTY:
            space = self._default_space
        else:
            space = self._spaces.get((database, table)) or self._space(database, table)
        try:  # keys.encode_key inlined: strict UTF-8 of a NUL-free key is the fast path
            key_text = key.replace(NUL, ESCAPED_NUL) if NUL in key else key
            engine_key = f"{space}{key_text}\x00\x01".encode()
        except UnicodeEncodeError:
            engine_key = encode_key(space, key)
        metadata = record.metadata
        lifetime = record.expiry
        if (
            ttl is None
            and expiry is None
            and not metadata
            # FOREVER is what Record() and read() give: an identity test spares the rest.
            and (lifetime is FOREVER or (type(lifetime) is timedelta and not lifetime))
        ):
            self._put(engine_key, _PLAIN + value)
        else:
            meta_json = codec.encode_metadata(metadata) if metadata else None
            expires_at, now = self._expires_at(lifetime, expiry, ttl)
            if expires_at is not None and expires_at <= now:
                self._delete(engine_key)
                return
            data = codec.encode(value, meta_json, expires_at)
            if expires_at is None:
                self._put(engine_key, data)
            else:
                db = self._db
                if db is None:
                    db = self._reconnect()
                db.put(engine_key, data, expires_at=expires_at)
        # After the put, so a suffix index registered meanwhile either sees it in its
        # key scan or here (see TableSuffixes._candidates).
        indexes = self._suffixes.by_space
        if indexes:
            index = indexes.get(space)
            if index is not None:
                index.note(key)

    def _expires_at(
        self, lifetime: object, expiry: object, ttl: object
    ) -> tuple[float | None, float]:
        """``(absolute expiry or None, now)`` by the precedence of ``rules.lifetime``."""
        chosen = rules.lifetime(lifetime, expiry, ttl)
        now = self._clock()
        if chosen is None:
            return None, now
        at = chosen.timestamp() if isinstance(chosen, datetime) else now + chosen
        if not -_FLOAT_MAX <= at <= _FLOAT_MAX:
            raise ValueError(f"expiry is out of range: {at}")
        return at, now

    def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""
        if type(key) is not str or not key:
            rules.refuse_key(key)
        space = self._spaces.get((database, table)) or self._space(database, table)
        self._delete(encode_key(space, key))

    def _delete(self, engine_key: bytes) -> None:
        """Delete one engine key (a suffix index drops it when a query finds it dead)."""
        db = self._db
        if db is None:
            db = self._reconnect()
        db.delete(engine_key)

    # -- reads -------------------------------------------------------------

    def read(
        self,
        key: str,
        *,
        database: str = "",
        table: str = "",
        prefix: bool = False,
        suffix: bool = False,
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[Record]:
        """One record by exact key, or the matches of a prefix and/or suffix query."""
        if prefix or suffix:
            return self._read_many(key, database, table, prefix, suffix, limit, offset)
        if limit or offset:  # ignored by an exact read, but never accepted when negative
            rules.check_page(limit, offset)
        if type(key) is not str or not key:
            rules.refuse_key(key)
        if database is _EMPTY and table is _EMPTY:
            space = self._default_space
        else:
            space = self._spaces.get((database, table)) or self._space(database, table)
        try:  # keys.encode_key inlined: strict UTF-8 of a NUL-free key is the fast path
            key_text = key.replace(NUL, ESCAPED_NUL) if NUL in key else key
            engine_key = f"{space}{key_text}\x00\x01".encode()
        except UnicodeEncodeError:
            engine_key = encode_key(space, key)
        data = self._get(engine_key)
        if data is not None:
            if not data[0]:
                # The hot path builds the record without Record.__init__'s argument handling.
                record = _new_record(Record)
                record.key = key
                record.value = data[1:]
                record.metadata = {}
                record.expiry = FOREVER
                return [record]
            decoded = decode_record(key, data, self._clock())
            if decoded is not None:
                return [decoded]
        raise NotFoundError(key, *rules.names(self._options, database, table))

    def _read_many(
        self,
        key: str,
        database: str,
        table: str,
        prefix: bool,
        suffix: bool,
        limit: int,
        offset: int,
    ) -> builtins.list[Record]:
        """Prefix and/or suffix read: filter, sort, skip ``offset``, take ``limit``."""
        rules.check_page(limit, offset)
        if type(key) is not str:
            rules.refuse_key(key)
        space = self._spaces.get((database, table)) or self._space(database, table)
        db = self._db
        if db is None:
            db = self._reconnect()
        now = self._clock()
        stop = offset + limit if limit else None
        records: Iterator[Record]
        if suffix and key:
            records = self._suffixes.records(db, space, key if prefix else "", key, now)
        else:
            records = prefix_records(db, space, key, now, stop)
        return builtins.list(islice(records, offset, stop))

    def list(
        self,
        *,
        database: str = "",
        table: str = "",
        prefix: str = "",
        suffix: str = "",
        limit: int = 0,
        offset: int = 0,
    ) -> builtins.list[str]:
        """Live keys starting with ``prefix`` and ending with ``suffix``, ascending, paginated."""
        rules.check_page(limit, offset)
        rules.check_affixes(prefix, suffix)
        space = self._spaces.get((database, table)) or self._space(database, table)
        db = self._db
        if db is None:
            db = self._reconnect()
        stop = offset + limit if limit else None
        keys: Iterable[str]
        if suffix:
            keys = self._suffixes.keys(db, space, prefix, suffix)
        else:
            keys = prefix_keys(db, space, prefix, stop)
        return builtins.list(islice(keys, offset, stop))

    # -- whole tables (for ``seglog copy``) ------------------------------------

    def namespaces(self) -> builtins.list[tuple[str, str]]:
        """Every (database, table) holding a live record, ascending."""
        db = self._reconnect()
        found: dict[tuple[str, str], None] = {}
        for engine_key in db.scan_keys(prefix=to_bytes(RECORD_TAG)):
            database, table, _ = split_key(engine_key)
            found[database, table] = None
        return builtins.list(found)

    def records(self, *, database: str = "", table: str = "") -> Iterator[Record]:
        """Every live record of one table, ascending by key, read lazily."""
        space = self._space(database, table)
        return prefix_records(self._reconnect(), space, "", self._clock())

    def write_many(self, records: Iterable[Record], *, database: str = "", table: str = "") -> int:
        """Write each record as ``write`` would (its expiry as the lifetime); how many."""
        count = 0
        for record in records:
            self.write(record, database=database, table=table)
            count += 1
        return count


def _directory(options: Options) -> str:
    """The engine directory options name: ``path``, else the one node, else the default."""
    if options.path is not None:
        return options.path
    if len(options.nodes) == 1:
        return os.path.abspath(os.path.expanduser(options.nodes[0]))
    if options.nodes:
        raise ValueError(f"LogStore is embedded: give one node (a directory), not {options.nodes}")
    return default_dir()
