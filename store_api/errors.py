"""Errors of networked backends."""

from __future__ import annotations


class UnavailableError(ConnectionError):
    """The backend could not be reached, or did not answer, within the store's ``timeout``.

    Raised instead of hanging when a server is down, silent, or stopped in the
    middle of a call (STORE_API.md, rule 18). The store object stays usable: a
    later call succeeds once the server (or a promoted standby) answers again.
    Whether a write that raised this reached the server is unknown; a write that
    returned is committed.
    """
