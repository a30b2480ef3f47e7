"""The SQL of ``PostgresStore``: one schema and a fixed set of statements, per dialect.

Every statement is a constant: user data (keys, values, names, times) only ever
travels as query parameters. The few composed queries are joined from constant
fragments, typed ``LiteralString`` so that ``mypy --strict`` proves no runtime
text (and so no data) can reach the SQL.

Two tables (docs/POSTGRES.md explains every choice):

* ``seglog_namespaces``: one row per (database, table) of the Store contract,
  keyed by a 64-bit id derived from the pair (``namespace_id``), so names of
  any length, NUL included, cost 8 bytes in every record's primary key;
* ``seglog_records``: the records, keyed by (namespace, key) with the key as
  ``BYTEA`` (its UTF-8 bytes: byte order is the contract's order, whatever the
  database's collation), the reversed key under its own index for suffix
  queries, and the expiry as ``TIMESTAMPTZ`` under a partial index for reaping.

Only SQL that PostgreSQL 15, YugabyteDB and CockroachDB share is used. The one
difference that matters is the primary key: YugabyteDB hash-shards on the
first key column unless told ``ASC``, which would turn every range read into a
scan of all tablets, and PostgreSQL refuses ``ASC`` inside a ``PRIMARY KEY``
clause; CockroachDB takes either and orders ascending anyway.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Final, LiteralString

from store_api.keys import namespace, to_bytes

#: Keys longer than this many UTF-8 bytes are refused: a btree entry holds about 2.7 KB.
MAX_KEY_BYTES: Final = 2048
#: ``LIMIT`` when the caller asked for no limit (the largest BIGINT).
NO_LIMIT: Final = (1 << 63) - 1


class Dialect(StrEnum):
    """The engine on the other end of the wire protocol."""

    POSTGRES = "postgres"
    YUGABYTE = "yugabyte"
    COCKROACH = "cockroach"


def detect_dialect(version: str) -> Dialect:
    """The dialect of a server from its ``SELECT version()`` text."""
    if "CockroachDB" in version:
        return Dialect.COCKROACH
    if "-YB-" in version or "YugabyteDB" in version:
        return Dialect.YUGABYTE
    return Dialect.POSTGRES


def namespace_id(database: str, table: str) -> int:
    """The signed 64-bit id of (database, table): the head of a SHA-256 of its injective text.

    ``keys.namespace`` already maps pairs to text injectively (``("a/b", "c")``
    and ``("a", "b/c")`` differ), so two pairs share an id only by a hash
    collision, which the namespace table detects (``PostgresStore`` refuses to
    write into a namespace whose stored names differ).
    """
    digest = hashlib.sha256(to_bytes(namespace(database, table))).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def next_prefix(prefix: bytes) -> bytes:
    """The smallest byte string greater than every string starting with ``prefix``.

    UTF-8 never contains 0xFF, so incrementing the last byte always works for
    encoded text; 0xFF bytes are stripped first for completeness.
    """
    head = prefix.rstrip(b"\xff")
    if not head:
        raise ValueError("no upper bound for a prefix of 0xFF bytes")
    return head[:-1] + bytes((head[-1] + 1,))


def create_statements(dialect: Dialect) -> tuple[LiteralString, ...]:
    """The idempotent DDL that makes the schema (safe to run on every connect)."""
    records_key = (
        "PRIMARY KEY (namespace ASC, key ASC)"
        if dialect is Dialect.YUGABYTE
        else "PRIMARY KEY (namespace, key)"
    )
    namespaces_key = "PRIMARY KEY (id ASC)" if dialect is Dialect.YUGABYTE else "PRIMARY KEY (id)"
    return (
        "CREATE TABLE IF NOT EXISTS seglog_namespaces ("
        " id BIGINT NOT NULL,"
        " database_name BYTEA NOT NULL,"
        " table_name BYTEA NOT NULL,"
        f" {namespaces_key})",
        "CREATE TABLE IF NOT EXISTS seglog_records ("
        " namespace BIGINT NOT NULL,"
        " key BYTEA NOT NULL,"
        " reversed_key BYTEA NOT NULL,"
        " value BYTEA NOT NULL,"
        " metadata TEXT,"
        " expires_at TIMESTAMPTZ,"
        f" {records_key})",
        "CREATE INDEX IF NOT EXISTS seglog_records_reversed"
        " ON seglog_records (namespace ASC, reversed_key ASC)",
        "CREATE INDEX IF NOT EXISTS seglog_records_expiry"
        " ON seglog_records (expires_at ASC) WHERE expires_at IS NOT NULL",
    )


#: "Now" for every statement: the store's clock if it has one, else the server's.
_NOW: Final = "COALESCE(%(now)s::timestamptz, statement_timestamp())"
_LIVE: Final = f"(expires_at IS NULL OR expires_at > {_NOW})"

REGISTER_NAMESPACE: Final = (
    "INSERT INTO seglog_namespaces (id, database_name, table_name)"
    " VALUES (%(ns)s, %(database)s, %(table)s) ON CONFLICT (id) DO NOTHING"
)
NAMESPACE_NAMES: Final = "SELECT database_name, table_name FROM seglog_namespaces WHERE id = %(ns)s"
ALL_NAMESPACES: Final = (
    "SELECT id, database_name, table_name FROM seglog_namespaces ORDER BY database_name, table_name"
)

UPSERT: Final = (
    "INSERT INTO seglog_records (namespace, key, reversed_key, value, metadata, expires_at)"
    " VALUES (%(ns)s, %(key)s, %(reversed)s, %(value)s, %(metadata)s,"
    " COALESCE(%(at)s::timestamptz, statement_timestamp() + %(ttl)s::interval))"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " metadata = excluded.metadata, expires_at = excluded.expires_at"
)
#: UPSERT for many records of one namespace: one statement over parallel arrays, sent in
#: binary (``%b``: dumping large arrays as text costs more than the statement).
UPSERT_MANY: Final = (
    "INSERT INTO seglog_records (namespace, key, reversed_key, value, metadata, expires_at)"
    " SELECT %(ns)s, r.key, r.reversed_key, r.value, r.metadata,"
    " COALESCE(r.at, statement_timestamp() + r.ttl)"
    " FROM unnest(%(key)b::bytea[], %(reversed)b::bytea[], %(value)b::bytea[],"
    " %(metadata)b::text[], %(at)b::timestamptz[], %(ttl)b::interval[])"
    " AS r(key, reversed_key, value, metadata, at, ttl)"
    " ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value,"
    " metadata = excluded.metadata, expires_at = excluded.expires_at"
)
DELETE: Final = "DELETE FROM seglog_records WHERE namespace = %(ns)s AND key = %(key)s"
READ_ONE: Final = (
    f"SELECT value, metadata, expires_at - {_NOW} FROM seglog_records"
    f" WHERE namespace = %(ns)s AND key = %(key)s AND {_LIVE}"
)
#: Deletes one batch of expired records. The outer expiry test is repeated so that a row
#: rewritten (revived) while the batch runs is re-checked and kept.
REAP: Final = (
    f"DELETE FROM seglog_records WHERE expires_at <= {_NOW} AND (namespace, key) IN"
    f" (SELECT namespace, key FROM seglog_records WHERE expires_at <= {_NOW} LIMIT %(batch)s)"
)

#: One page of a whole table, after the last key of the previous page (keyset pagination).
PAGE_AFTER: Final = (
    f"SELECT key, value, metadata, expires_at - {_NOW} FROM seglog_records"
    f" WHERE namespace = %(ns)s AND key > %(after)s AND {_LIVE} ORDER BY key LIMIT %(limit)s"
)

_PREFIX: Final = " AND key >= %(lo)s AND key < %(hi)s"
_SUFFIX: Final = " AND reversed_key >= %(rlo)s AND reversed_key < %(rhi)s"
_PAGE: Final = " ORDER BY key LIMIT %(limit)s OFFSET %(offset)s"


def _query(columns: LiteralString, prefix: bool, suffix: bool) -> LiteralString:
    """A range query over one namespace, filtered by key range, reversed-key range and expiry."""
    query = "SELECT " + columns + " FROM seglog_records WHERE namespace = %(ns)s"
    if prefix:
        query += _PREFIX
    if suffix:
        query += _SUFFIX
    return query + " AND " + _LIVE + _PAGE


#: (prefix given, suffix given) -> query; ``list`` and ``read`` each have all four.
LIST: Final = {
    (prefix, suffix): _query("key", prefix, suffix)
    for prefix in (False, True)
    for suffix in (False, True)
}
READ_MANY: Final = {
    (prefix, suffix): _query(f"key, value, metadata, expires_at - {_NOW}", prefix, suffix)
    for prefix in (False, True)
    for suffix in (False, True)
}
