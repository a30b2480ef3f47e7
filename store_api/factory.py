"""``new_store``: go-micro's ``NewStore``, choosing the backend from the nodes."""

from __future__ import annotations

from typing import Any

from store_api.interface import Store
from store_api.logstore import LogStore

#: Node schemes that name a PostgreSQL-protocol server.
POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def new_store(**options: Any) -> Store:
    """A ``PostgresStore`` when ``nodes`` are ``postgresql://`` URLs, else a ``LogStore``.

    Options are those of the chosen backend's constructor. Mixing URL and
    directory nodes is refused.
    """
    nodes = options.get("nodes") or ()
    if isinstance(nodes, str):
        nodes = (nodes,)
    remote = [isinstance(node, str) and node.startswith(POSTGRES_SCHEMES) for node in nodes]
    if any(remote):
        if not all(remote):
            raise ValueError("nodes mix postgresql:// URLs and directories")
        from store_api.postgres import PostgresStore

        return PostgresStore(**{**options, "nodes": tuple(nodes)})
    return LogStore(**options)
