"""``PostgresStore``: the ``Store`` contract on PostgreSQL, YugabyteDB and CockroachDB.

A thread-safe pool (``psycopg_pool``) of autocommit connections: every call is
one statement, so a write that returns is committed. Every call runs under a
deadline of ``timeout`` seconds covering the wait for a connection, retries and
the statement itself (``watchdog``); past it the call raises
``UnavailableError`` rather than hang, and the pool replaces broken connections
by itself. Connection failures, server shutdowns and serialization failures
(SQLSTATE 40001, routine on distributed engines) are retried within the
deadline: every statement here is idempotent, so a retry is always safe.

The schema and every statement are in ``schema``; the rules shared with
``LogStore`` (argument checks, expiry precedence, namespace fallback) in
``store_api.rules``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final, TypeVar

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from store_api import codec, rules
from store_api.errors import UnavailableError
from store_api.interface import Store
from store_api.keys import to_bytes
from store_api.options import Options
from store_api.postgres import schema
from store_api.postgres.watchdog import WATCHDOG
from store_api.record import FOREVER, NotFoundError, Record

T = TypeVar("T")
Conn = psycopg.Connection[Any]
log: Final = logging.getLogger(__name__)

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


class PostgresStore(Store):
    """A ``Store`` in one PostgreSQL-protocol database (STORE_API.md, "PostgresStore").

    ``dsn`` is a libpq URL or ``key=value`` string; several hosts mean failover
    (``target_session_attrs=read-write`` is added unless given). Without it, the
    ``nodes`` are used: one DSN, or several single-host URLs merged into one
    multi-host DSN. Backend options: ``timeout`` (seconds a call may take, 5),
    ``pool_size`` (most connections, 10), ``reap_interval`` (seconds between
    sweeps that delete expired rows, 60; 0 disables them), ``reap_batch``,
    ``clock`` (a ``time.time``-like callable for expiry; ``None`` uses the
    server's clock) and ``dialect`` (``"postgres"``, ``"yugabyte"``,
    ``"cockroach"``; detected when ``None``).
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        database: str = "micro",
        table: str = "micro",
        nodes: tuple[str, ...] = (),
        **backend_options: Any,
    ) -> None:
        if dsn is not None:
            if not isinstance(dsn, str):
                raise TypeError(f"dsn must be str, not {type(dsn).__name__}")
            nodes = (dsn,)
        self._options = _checked(
            Options(nodes=nodes).merge(
                database=database, table=table, **{**DEFAULTS, **backend_options}
            )
        )
        self._lock = threading.RLock()
        self._pool: ConnectionPool[Conn] | None = None
        self._dialect: schema.Dialect | None = None
        self._registered: set[int] = set()
        self._reaper: _Reaper | None = None
        self.connect()

    # -- lifecycle -----------------------------------------------------------

    def connect(self) -> None:
        """Open the pool and make sure the schema exists; ``UnavailableError`` if unreachable."""
        with self._lock:
            if self._pool is not None:
                return
            backend = self._options.engine_options
            timeout = float(backend["timeout"])
            pool: ConnectionPool[Conn] = ConnectionPool(
                _conninfo(self._options.nodes, timeout),
                min_size=1,
                max_size=int(backend["pool_size"]),
                timeout=timeout,
                reconnect_timeout=max(10.0, 2 * timeout),
                kwargs={"autocommit": True},
                open=False,
                name="seglog",
            )
            pool.open(wait=False)
            self._pool = pool
            try:
                self._ensure_schema()
            except BaseException:
                self._pool = None
                pool.close(timeout=0)
                raise
            interval = float(backend["reap_interval"])
            if interval > 0:
                self._reaper = _Reaper(self, interval)

    def disconnect(self) -> None:
        """Close every connection; idempotent. The next call reconnects by itself."""
        with self._lock:
            pool, self._pool = self._pool, None
            reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.stop()
        if pool is not None:
            pool.close(timeout=float(self._options.engine_options["timeout"]))

    @property
    def connected(self) -> bool:
        """Whether the pool is open right now."""
        return self._pool is not None

    def init(self, **options: Any) -> None:
        """Merge ``options``; reconnect if a connection option changed while connected."""
        with self._lock:
            old = self._options
            new = _checked(old.merge(**options))
            reopen = self._pool is not None and (
                new.nodes != old.nodes or new.engine_options != old.engine_options
            )
            if reopen:
                self.disconnect()
            self._options = new
            if reopen:
                try:
                    self.connect()
                except BaseException:
                    self._options = old
                    raise

    def options(self) -> Options:
        """The options in force (immutable)."""
        return self._options

    @property
    def dialect(self) -> schema.Dialect | None:
        """The engine on the other end, once connected."""
        return self._dialect

    def __str__(self) -> str:
        return "postgres"

    def __repr__(self) -> str:
        state = "connected" if self._pool is not None else "disconnected"
        options = self._options
        return (
            f"PostgresStore(<{len(options.nodes)} node(s)>, database={options.database!r}, "
            f"table={options.table!r}) <{state}>"
        )

    # -- running statements ---------------------------------------------------

    def _run(self, work: Callable[[Conn], T]) -> T:
        """``work(conn)`` on a pooled connection within ``timeout``, retrying what is safe."""
        pool = self._pool
        if pool is None:
            self.connect()
            pool = self._pool
            assert pool is not None
        timeout = float(self._options.engine_options["timeout"])
        deadline = time.monotonic() + timeout
        delay = RETRY_DELAY
        while True:
            left = deadline - time.monotonic()
            try:
                conn = pool.getconn(max(left, 0.0))
            except PoolTimeout as exc:
                raise UnavailableError(f"no connection to the server within {timeout} s") from exc
            token = WATCHDOG.watch(conn, deadline)
            try:
                return work(conn)
            except psycopg.Error as exc:
                if not _retryable(exc, conn):
                    raise
                if conn.info.transaction_status is not psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                error = exc
            finally:
                WATCHDOG.release(token)
                pool.putconn(conn)
            pause = 0.0 if conn.closed else delay
            if time.monotonic() + pause >= deadline:
                raise UnavailableError(f"the server did not answer within {timeout} s: {error}")
            if pause:
                time.sleep(pause)
                delay = min(delay * 2, RETRY_DELAY_MAX)

    def _ensure_schema(self) -> None:
        """Detect the dialect and create the tables and indexes if missing."""

        def create(conn: Conn) -> schema.Dialect:
            dialect = self._options.engine_options["dialect"]
            if dialect is None:
                row = conn.execute("SELECT version()").fetchone()
                dialect = schema.detect_dialect(str(row[0]) if row else "")
            dialect = schema.Dialect(dialect)
            for statement in schema.create_statements(dialect):
                # UniqueViolation: another store created it at the same moment.
                with contextlib.suppress(psycopg.errors.UniqueViolation):
                    conn.execute(statement)
            return dialect

        self._dialect = self._run(create)

    def _now(self) -> datetime | None:
        """ "Now" for expiry: the store's clock, or ``None`` for the server's."""
        clock = self._options.engine_options["clock"]
        return None if clock is None else datetime.fromtimestamp(clock(), UTC)

    # -- namespaces ----------------------------------------------------------

    def _namespace(self, database: str, table: str) -> tuple[int, str, str]:
        """(id, database, table) a call addresses (names falling back to the options)."""
        names = rules.names(self._options, database, table)
        return schema.namespace_id(*names), *names

    def _register(self, ns: int, database: str, table: str) -> None:
        """Record the names of namespace ``ns`` once per store (for listing and copying)."""
        if ns in self._registered:
            return
        params = {"ns": ns, "database": to_bytes(database), "table": to_bytes(table)}

        def register(conn: Conn) -> None:
            if conn.execute(schema.REGISTER_NAMESPACE, params).rowcount:
                return
            row = conn.execute(schema.NAMESPACE_NAMES, params).fetchone()
            if row is not None and (bytes(row[0]), bytes(row[1])) != (
                params["database"],
                params["table"],
            ):
                raise RuntimeError(
                    f"namespace id {ns} of {(database, table)!r} is taken by other names"
                )

        self._run(register)
        self._registered.add(ns)

    def namespaces(self) -> builtins.list[tuple[str, str]]:
        """Every (database, table) ever written through a ``PostgresStore`` on this database."""

        def fetch(conn: Conn) -> builtins.list[tuple[Any, ...]]:
            return conn.execute(schema.ALL_NAMESPACES).fetchall()

        return [(_text(database), _text(table)) for _, database, table in self._run(fetch)]

    # -- write and delete ----------------------------------------------------

    def write(
        self,
        record: Record,
        *,
        database: str = "",
        table: str = "",
        expiry: datetime | None = None,
        ttl: timedelta | float | None = None,
    ) -> None:
        """Upsert ``record``: value, metadata and expiry all replaced, committed on return."""
        ns, database, table = self._namespace(database, table)
        params = self._row(ns, record, expiry, ttl)
        self._register(ns, database, table)
        try:
            self._run(lambda conn: conn.execute(schema.UPSERT, params))
        except psycopg.errors.DataError as exc:  # an expiry past what the server can store
            raise ValueError(f"expiry is out of range: {exc}") from None

    def _row(
        self, ns: int, record: Record, expiry: datetime | None, ttl: timedelta | float | None
    ) -> dict[str, Any]:
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
            now = self._now()
            return (None, duration) if now is None else (now + duration, None)
        except (OverflowError, OSError) as exc:
            raise ValueError(f"expiry is out of range: {exc}") from None

    def delete(self, key: str, *, database: str = "", table: str = "") -> None:
        """Remove ``key`` from one database/table; a missing key is not an error."""
        rules.check_key(key)
        ns, _, _ = self._namespace(database, table)
        params = {"ns": ns, "key": to_bytes(key)}
        self._run(lambda conn: conn.execute(schema.DELETE, params))

    def write_many(
        self, records: Iterable[Record], *, database: str = "", table: str = "", batch: int = 1000
    ) -> int:
        """Write each record as ``write`` would, ``batch`` per statement; how many.

        Each batch is one statement, committed whole or not at all and retried
        whole (upserts are idempotent), so re-running an interrupted bulk write
        is safe. Keys must not repeat within one call.
        """
        ns, database, table = self._namespace(database, table)
        count = 0
        rows: builtins.list[dict[str, Any]] = []
        for record in records:
            rows.append(self._row(ns, record, None, None))
            if len(rows) >= batch:
                count += self._upsert_all(ns, rows, database, table)
                rows = []
        return count + (self._upsert_all(ns, rows, database, table) if rows else 0)

    def _upsert_all(
        self, ns: int, rows: builtins.list[dict[str, Any]], database: str, table: str
    ) -> int:
        """Upsert ``rows`` (of namespace ``ns``) in one statement."""
        self._register(ns, database, table)
        params: dict[str, Any] = {"ns": ns}
        for column in ("key", "reversed", "value", "metadata", "at", "ttl"):
            params[column] = [row[column] for row in rows]
        try:
            self._run(lambda conn: conn.execute(schema.UPSERT_MANY, params))
        except psycopg.errors.DataError as exc:
            raise ValueError(f"expiry is out of range: {exc}") from None
        return len(rows)

    def records(
        self, *, database: str = "", table: str = "", batch: int = 1000
    ) -> Iterator[Record]:
        """Every live record of one table, ascending by key, fetched ``batch`` at a time.

        Each page starts after the last key of the one before (keyset pagination:
        every page is one index range, however deep into the table).
        """
        ns, _, _ = self._namespace(database, table)
        params: dict[str, Any] = {"ns": ns, "after": b"", "limit": batch}
        while True:
            params["now"] = self._now()
            rows = self._run(lambda conn: conn.execute(schema.PAGE_AFTER, params).fetchall())
            for row in rows:
                yield _record(_text(row[0]), *row[1:])
            if len(rows) < batch:
                return
            params["after"] = bytes(rows[-1][0])

    def reap_expired(self) -> int:
        """Delete expired records in batches (from seglog's table only); how many went."""
        batch = int(self._options.engine_options["reap_batch"])
        params = {"now": self._now(), "batch": batch}
        total = 0
        while True:
            count = self._run(lambda conn: conn.execute(schema.REAP, params).rowcount)
            total += count
            if count < batch:
                return total

    # -- reads -----------------------------------------------------------------

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
        rules.check_page(limit, offset)
        if prefix or suffix:
            if type(key) is not str:
                rules.refuse_key(key)
            query, params = self._range(
                schema.READ_MANY, database, table, key if prefix else "", key if suffix else ""
            )
            params.update(limit=limit or schema.NO_LIMIT, offset=offset)
            rows = self._run(lambda conn: conn.execute(query, params).fetchall())
            return [_record(_text(row[0]), *row[1:]) for row in rows]
        rules.check_key(key)
        ns, database, table = self._namespace(database, table)
        params = {"ns": ns, "key": to_bytes(key), "now": self._now()}
        row = self._run(lambda conn: conn.execute(schema.READ_ONE, params).fetchone())
        if row is None:
            raise NotFoundError(key, database, table)
        return [_record(key, *row)]

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
        query, params = self._range(schema.LIST, database, table, prefix, suffix)
        params.update(limit=limit or schema.NO_LIMIT, offset=offset)
        rows = self._run(lambda conn: conn.execute(query, params).fetchall())
        return [_text(row[0]) for row in rows]

    def _range(
        self,
        queries: Mapping[tuple[bool, bool], Any],
        database: str,
        table: str,
        prefix: str,
        suffix: str,
    ) -> tuple[Any, dict[str, Any]]:
        """The query for a prefix/suffix filter and its parameters (key ranges, not LIKE)."""
        ns, _, _ = self._namespace(database, table)
        params: dict[str, Any] = {"ns": ns, "now": self._now()}
        if prefix:
            params["lo"] = low = to_bytes(prefix)
            params["hi"] = schema.next_prefix(low)
        if suffix:
            params["rlo"] = low = to_bytes(suffix[::-1])
            params["rhi"] = schema.next_prefix(low)
        return queries[bool(prefix), bool(suffix)], params


class _Reaper:
    """A daemon thread that deletes expired records every ``interval`` seconds."""

    def __init__(self, store: PostgresStore, interval: float) -> None:
        self._store = store
        self._interval = interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="seglog-postgres-reaper", daemon=True
        )
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            try:
                self._store.reap_expired()
            except (UnavailableError, psycopg.Error) as exc:
                log.warning("reaping expired records failed (will retry): %s", exc)

    def stop(self) -> None:
        self._stopped.set()
        if self._thread is not threading.current_thread():
            self._thread.join()


def _text(data: bytes) -> str:
    """A key or name stored as UTF-8 bytes."""
    return bytes(data).decode("utf-8", "surrogatepass")


def _record(key: str, value: bytes, metadata: str | None, remaining: timedelta | None) -> Record:
    """A ``Record`` from a row: metadata JSON decoded, the remaining lifetime as expiry."""
    return Record(
        key,
        bytes(value),
        codec.decode_metadata(metadata) if metadata else {},
        FOREVER if remaining is None else max(remaining, timedelta(microseconds=1)),
    )


def _retryable(exc: psycopg.Error, conn: Conn) -> bool:
    """Whether a failed statement may be run again (on this or another connection)."""
    return (
        conn.closed
        or conn.broken
        or exc.sqlstate in RETRY_STATES
        or (exc.sqlstate or "").startswith("08")
    )


def _checked(options: Options) -> Options:
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
    _conninfo(options.nodes, 1.0)  # a malformed DSN fails here, before any connection
    return options


def _conninfo(nodes: tuple[str, ...], timeout: float) -> str:
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
