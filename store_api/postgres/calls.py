"""What ``PostgresStore`` and ``AsyncPostgresStore`` send: each Store call as SQL, checked first.

Both backends share this layer and differ only in how they run a ``Call``
(a blocking pool or an asyncio pool). ``Calls`` turns the arguments of one
Store method into the statement, its parameters and how to read its result;
every argument check runs here, before any SQL, so a call that raises has sent
nothing. It also holds the option checks, the connection string and the retry
rules both backends apply.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Generic, Literal, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from store_api import codec, rules
from store_api.errors import UnavailableError
from store_api.keys import to_bytes
from store_api.options import Options
from store_api.postgres import schema
from store_api.record import FOREVER, NotFoundError, Record

T = TypeVar("T")

#: Options of their own (kept in ``Options.engine_options``) and their defaults.
DEFAULTS: Final[Mapping[str, Any]] = {
    "timeout": 5.0,
    "pool_size": 10,
    "reap_interval": 60.0,
    "reap_batch": 1000,
    "clock": None,
    "dialect": None,
}
#: SQLSTATEs worth retrying: serialization failure, deadlock, server shutting down or
#: starting, a read-only (standby) server reached after a failover.
RETRY_STATES: Final = frozenset({"40001", "40P01", "57P01", "57P02", "57P03", "25006"})
#: First and largest pause between retries, in seconds.
RETRY_DELAY: Final = 0.02
RETRY_DELAY_MAX: Final = 0.5

#: What a backend reads from the cursor after executing a ``Call``.
Fetch = Literal["one", "all", "rowcount"]


@dataclass(frozen=True)
class Call(Generic[T]):
    """One statement, its parameters, what to fetch, and how to turn that into the result."""

    query: Any
    params: Mapping[str, Any]
    fetch: Fetch
    result: Callable[[Any], T]
    #: A ``DataError`` from the server means an expiry it cannot store: ``ValueError``.
    writes_expiry: bool = False


@dataclass(frozen=True)
class Namespace:
    """A (database, table) pair and the id its rows are stored under."""

    id: int
    database: str
    table: str


def _ignore(_: object) -> None:
    return None


def _count(rowcount: int) -> int:
    return rowcount


class Calls:
    """The calls of one store, for its options in force (rebuilt when they change)."""

    def __init__(self, options: Options) -> None:
        self.options = options
        self.timeout = float(options.engine_options["timeout"])
        self._clock = options.engine_options["clock"]

    def now(self) -> datetime | None:
        """ "Now" for expiry: the store's clock, or ``None`` for the server's."""
        return None if self._clock is None else datetime.fromtimestamp(self._clock(), UTC)

    def namespace(self, database: str, table: str) -> Namespace:
        """The namespace a call addresses (empty names falling back to the options)."""
        names = rules.names(self.options, database, table)
        return Namespace(schema.namespace_id(*names), *names)

    # -- namespaces ----------------------------------------------------------

    def register(self, ns: Namespace) -> tuple[Call[int], Call[None]]:
        """Record the names of ``ns``: the insert, then (if it inserted nothing) the check
        that the id is not taken by other names."""
        params = {
            "ns": ns.id,
            "database": to_bytes(ns.database),
            "table": to_bytes(ns.table),
        }

        def same_names(row: tuple[Any, ...] | None) -> None:
            if row is not None and (bytes(row[0]), bytes(row[1])) != (
                params["database"],
                params["table"],
            ):
                raise RuntimeError(
                    f"namespace id {ns.id} of {(ns.database, ns.table)!r} is taken by other names"
                )

        return (
            Call(schema.REGISTER_NAMESPACE, params, "rowcount", _count),
            Call(schema.NAMESPACE_NAMES, params, "one", same_names),
        )

    def namespaces(self) -> Call[builtins.list[tuple[str, str]]]:
        def names(rows: builtins.list[tuple[Any, ...]]) -> builtins.list[tuple[str, str]]:
            return [(text(database), text(table)) for _, database, table in rows]

        return Call(schema.ALL_NAMESPACES, {}, "all", names)

    # -- write and delete ----------------------------------------------------

    def write(
        self, record: Record, database: str, table: str, expiry: object, ttl: object
    ) -> tuple[Namespace, Call[None]]:
        """The namespace to register and the UPSERT of ``record``."""
        ns = self.namespace(database, table)
        params = self._row(ns.id, record, expiry, ttl)
        return ns, Call(schema.UPSERT, params, "rowcount", _ignore, writes_expiry=True)

    def write_many(
        self, records: Iterable[Record], database: str, table: str, batch: int
    ) -> tuple[Namespace, Iterable[Call[int]]]:
        """The namespace to register and one UPSERT per ``batch`` records (each all or none)."""
        ns = self.namespace(database, table)

        def batches() -> Iterable[Call[int]]:
            rows: builtins.list[dict[str, Any]] = []
            for record in records:
                rows.append(self._row(ns.id, record, None, None))
                if len(rows) >= batch:
                    yield self._upsert_all(ns.id, rows)
                    rows = []
            if rows:
                yield self._upsert_all(ns.id, rows)

        return ns, batches()

    def _upsert_all(self, ns: int, rows: builtins.list[dict[str, Any]]) -> Call[int]:
        params: dict[str, Any] = {"ns": ns}
        for column in ("key", "reversed", "value", "metadata", "at", "ttl"):
            params[column] = [row[column] for row in rows]
        count = len(rows)
        return Call(schema.UPSERT_MANY, params, "rowcount", lambda _: count, writes_expiry=True)

    def _row(self, ns: int, record: Record, expiry: object, ttl: object) -> dict[str, Any]:
        """The UPSERT parameters of ``record``; every check runs here, before any SQL."""
        if not isinstance(record, Record):
            raise TypeError(f"record must be a Record, not {type(record).__name__}")
        key = record.key
        rules.check_key(key)
        value = record.value if type(record.value) is bytes else rules.as_bytes(record.value)
        key_bytes = to_bytes(key)
        if len(key_bytes) > schema.MAX_KEY_BYTES:
            raise ValueError(
                f"key is {len(key_bytes)} UTF-8 bytes; PostgresStore takes at most "
                f"{schema.MAX_KEY_BYTES} (a btree index limit)"
            )
        metadata = record.metadata
        meta_text = codec.encode_metadata(metadata).decode("ascii") if metadata else None
        at, ttl_interval = self._expiry(rules.lifetime(record.expiry, expiry, ttl))
        return {
            "ns": ns,
            "key": key_bytes,
            "reversed": to_bytes(key[::-1]),
            "value": value,
            "metadata": meta_text,
            "at": at,
            "ttl": ttl_interval,
        }

    def _expiry(
        self, lifetime: float | datetime | None
    ) -> tuple[datetime | None, timedelta | None]:
        """(absolute expiry, lifetime left to the server's clock) for the UPSERT statement."""
        if lifetime is None:
            return None, None
        try:
            if isinstance(lifetime, datetime):
                return (lifetime if lifetime.tzinfo else lifetime.astimezone()), None
            duration = rules.as_duration(lifetime)
            now = self.now()
            return (None, duration) if now is None else (now + duration, None)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"expiry is out of range: {exc}") from None

    def delete(self, key: str, database: str, table: str) -> Call[None]:
        rules.check_key(key)
        params = {"ns": self.namespace(database, table).id, "key": to_bytes(key)}
        return Call(schema.DELETE, params, "rowcount", _ignore)

    def reap(self, batch: int) -> Call[int]:
        """One batch of expired rows deleted (from seglog's table only); how many."""
        return Call(schema.REAP, {"now": self.now(), "batch": batch}, "rowcount", _count)

    # -- reads -----------------------------------------------------------------

    def read(
        self,
        key: str,
        database: str,
        table: str,
        prefix: bool,
        suffix: bool,
        limit: int,
        offset: int,
    ) -> Call[builtins.list[Record]]:
        """An exact read (``NotFoundError`` when missing) or a prefix/suffix query."""
        rules.check_page(limit, offset)
        if prefix or suffix:
            if type(key) is not str:
                rules.refuse_key(key)
            query, params = self._range(
                schema.READ_MANY, database, table, key if prefix else "", key if suffix else ""
            )
            params.update(limit=limit or schema.NO_LIMIT, offset=offset)
            return Call(query, params, "all", rows_to_records)
        rules.check_key(key)
        ns = self.namespace(database, table)
        params = {"ns": ns.id, "key": to_bytes(key), "now": self.now()}

        def found(row: tuple[Any, ...] | None) -> builtins.list[Record]:
            if row is None:
                raise NotFoundError(key, ns.database, ns.table)
            return [to_record(key, *row)]

        return Call(schema.READ_ONE, params, "one", found)

    def list(
        self, database: str, table: str, prefix: str, suffix: str, limit: int, offset: int
    ) -> Call[builtins.list[str]]:
        rules.check_page(limit, offset)
        rules.check_affixes(prefix, suffix)
        query, params = self._range(schema.LIST, database, table, prefix, suffix)
        params.update(limit=limit or schema.NO_LIMIT, offset=offset)
        return Call(query, params, "all", lambda rows: [text(row[0]) for row in rows])

    def page_after(
        self, ns: Namespace, after: bytes, batch: int
    ) -> Call[builtins.list[tuple[Any, ...]]]:
        """One page of a whole table after key ``after`` (keyset pagination)."""
        params = {"ns": ns.id, "after": after, "limit": batch, "now": self.now()}
        return Call(schema.PAGE_AFTER, params, "all", builtins.list)

    def _range(
        self,
        queries: Mapping[tuple[bool, bool], Any],
        database: str,
        table: str,
        prefix: str,
        suffix: str,
    ) -> tuple[Any, dict[str, Any]]:
        """The query for a prefix/suffix filter and its parameters (key ranges, not LIKE)."""
        params: dict[str, Any] = {"ns": self.namespace(database, table).id, "now": self.now()}
        if prefix:
            params["lo"] = low = to_bytes(prefix)
            params["hi"] = schema.next_prefix(low)
        if suffix:
            params["rlo"] = low = to_bytes(suffix[::-1])
            params["rhi"] = schema.next_prefix(low)
        return queries[bool(prefix), bool(suffix)], params


def text(data: bytes) -> str:
    """A key or name stored as UTF-8 bytes."""
    return bytes(data).decode("utf-8", "surrogatepass")


def to_record(key: str, value: bytes, metadata: str | None, remaining: timedelta | None) -> Record:
    """A ``Record`` from a row: metadata JSON decoded, the remaining lifetime as expiry."""
    return Record(
        key,
        bytes(value),
        codec.decode_metadata(metadata) if metadata else {},
        FOREVER if remaining is None else max(remaining, timedelta(microseconds=1)),
    )


def rows_to_records(rows: Iterable[tuple[Any, ...]]) -> builtins.list[Record]:
    """Records from rows of (key, value, metadata, remaining lifetime)."""
    return [to_record(text(row[0]), *row[1:]) for row in rows]


class Attempts:
    """The deadline of one call and the pauses between its retries (both backends' loop)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self._delay = RETRY_DELAY

    def left(self) -> float:
        """Seconds until the deadline (0 once past it)."""
        return max(self.deadline - time.monotonic(), 0.0)

    def no_connection(self, exc: Exception) -> UnavailableError:
        """The error for a pool that gave no connection before the deadline."""
        return UnavailableError(f"no connection to the server within {self.timeout} s: {exc}")

    def pause(self, error: psycopg.Error, connection_lost: bool) -> float:
        """Seconds to wait before the next try (none after a lost connection: the pool
        gives another); ``UnavailableError`` if that would pass the deadline."""
        pause = 0.0 if connection_lost else self._delay
        if time.monotonic() + pause >= self.deadline:
            raise UnavailableError(f"the server did not answer within {self.timeout} s: {error}")
        if pause:
            self._delay = min(self._delay * 2, RETRY_DELAY_MAX)
        return pause


def retryable(exc: psycopg.Error, closed: bool, broken: bool) -> bool:
    """Whether a failed statement may be run again (on this or another connection).

    Every statement here is idempotent, so a retry after a lost connection is safe.
    """
    return closed or broken or exc.sqlstate in RETRY_STATES or (exc.sqlstate or "").startswith("08")


def out_of_range(exc: psycopg.errors.DataError) -> ValueError:
    """The ``ValueError`` for an expiry the server cannot store."""
    return ValueError(f"expiry is out of range: {exc}")


def checked(options: Options) -> Options:
    """``options`` if every backend option is sound; else ``TypeError``/``ValueError``."""
    backend = options.engine_options
    unknown = set(backend) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"unknown PostgresStore options: {sorted(unknown)}")
    if not options.nodes:
        raise ValueError("PostgresStore needs a DSN (or nodes)")
    for name in ("timeout", "reap_interval"):
        value = backend[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{name} must be a non-negative number of seconds, not {value!r}")
    if not backend["timeout"] > 0:
        raise ValueError("timeout must be positive")
    for name in ("pool_size", "reap_batch"):
        value = backend[name]
        if type(value) is not int or value < 1:
            raise ValueError(f"{name} must be a positive int, not {value!r}")
    if backend["clock"] is not None and not callable(backend["clock"]):
        raise TypeError("clock must be callable or None")
    if backend["dialect"] is not None:
        schema.Dialect(backend["dialect"])
    conninfo(options.nodes, 1.0)  # a malformed DSN fails here, before any connection
    return options


def initial_options(
    dsn: object, database: str, table: str, nodes: tuple[str, ...], backend: Mapping[str, Any]
) -> Options:
    """The checked options of a new store (``dsn``, if given, is its one node)."""
    if dsn is not None:
        if not isinstance(dsn, str):
            raise TypeError(f"dsn must be str, not {type(dsn).__name__}")
        nodes = (dsn,)
    return checked(
        Options(nodes=nodes).merge(database=database, table=table, **{**DEFAULTS, **backend})
    )


def conninfo(nodes: tuple[str, ...], timeout: float) -> str:
    """One libpq conninfo for ``nodes``: several hosts merged, with timeouts added."""
    try:
        parts = [conninfo_to_dict(node) for node in nodes]
    except psycopg.ProgrammingError as exc:
        raise ValueError(f"bad PostgreSQL DSN: {exc}") from None
    params: dict[str, Any] = dict(parts[0])
    if len(parts) > 1:
        rest = [{k: v for k, v in p.items() if k not in ("host", "port")} for p in parts]
        if any(other != rest[0] for other in rest[1:]):
            raise ValueError("nodes must differ only in host and port")
        params["host"] = ",".join(str(p.get("host", "")) for p in parts)
        params["port"] = ",".join(str(p.get("port", "")) for p in parts)
    params.setdefault("connect_timeout", str(max(2, round(timeout))))
    if "," in str(params.get("host", "")):
        params.setdefault("target_session_attrs", "read-write")
    return make_conninfo(**params)


def dialect_of(options: Options, version: str) -> schema.Dialect:
    """The configured dialect, else the one ``SELECT version()`` names."""
    chosen = options.engine_options["dialect"]
    return schema.Dialect(chosen if chosen is not None else schema.detect_dialect(version))
