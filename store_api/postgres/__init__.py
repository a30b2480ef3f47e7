"""``PostgresStore``: the Store contract on PostgreSQL-protocol engines (docs/POSTGRES.md).

Needs the ``postgres`` extra: ``pip install 'seglog[postgres]'`` (psycopg 3 and psycopg-pool).
"""

from store_api.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
