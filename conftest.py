"""Fixtures shared by every test directory: the throwaway PostgreSQL server.

The server is started once per test session, on first use.

With ``CI=true`` a server that cannot be found or started fails the tests that
need it; elsewhere they are skipped with the reason. Each test gets its own SQL
schema (through ``search_path`` in its DSN), so stores of different tests never
see each other's tables, and every test starts on a schema the store creates.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest

#: The database every test schema lives in (created with the ICU en-US collation).
TEST_DATABASE = "seglog_test"

_schemas = itertools.count()


def unavailable(reason: str) -> None:
    """Fail in CI, where PostgreSQL must be there; skip elsewhere."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL not available: {reason}")


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[object]:
    """A running ``TemporaryServer`` with the test database, for the whole session."""
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401

        from store_api.postgres.server import ServerUnavailable, TemporaryServer
    except ImportError as exc:
        unavailable(f"psycopg is not installed ({exc}); pip install -e '.[postgres]'")
        raise
    try:
        server = TemporaryServer().init().start()
    except ServerUnavailable as exc:
        unavailable(str(exc))
        raise
    try:
        server.create_database(TEST_DATABASE)
        yield server
    finally:
        server.close()


def fresh_schema_dsn(server: object) -> str:
    """A DSN whose tables land in a new, empty schema of the test database."""
    import psycopg
    from psycopg import sql

    from store_api.postgres.server import TemporaryServer

    assert isinstance(server, TemporaryServer)
    name = f"test_{next(_schemas)}"
    with psycopg.connect(server.dsn(TEST_DATABASE), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    return server.dsn(TEST_DATABASE, options=f"-c search_path={name}")


@pytest.fixture
def postgres_dsn(postgres_server: object) -> str:
    """A DSN of the test database whose tables land in a new, empty schema."""
    return fresh_schema_dsn(postgres_server)


@pytest.fixture
def postgres_fresh_dsn(postgres_server: object) -> Callable[[], str]:
    """Makes DSNs of new, empty schemas (for tests that need several fresh stores)."""
    return lambda: fresh_schema_dsn(postgres_server)
