"""Client-side deadlines for calls on a PostgreSQL connection.

A server that stops answering in the middle of a statement (a ``SIGSTOP``, a
frozen machine, a lost route) leaves the client waiting on a socket that the
kernel still keeps open; ``statement_timeout`` cannot fire on a stopped server,
a cancel request goes to the same stopped server, and TCP keepalives are
answered by the server's kernel. So the client enforces the deadline itself:
one daemon thread per process looks at the calls in flight a few times a second
and shuts down the socket of any call past its deadline. The blocked libpq read
then returns at once with "server closed the connection", the call fails with a
connection error, and the pool drops the broken connection.

Registering a call is a dict insertion under an uncontended lock: no thread,
timer or system call per statement.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import threading
import time
from typing import Any, Final

import psycopg

#: A blocking or an asyncio connection: both are severed the same way, by their socket.
AnyConnection = psycopg.Connection[Any] | psycopg.AsyncConnection[Any]

#: How often the watchdog looks at the calls in flight (the lateness of a shutdown).
TICK: Final = 0.05


class Watchdog:
    """Shuts the socket of every watched connection whose deadline has passed."""

    def __init__(self, tick: float = TICK) -> None:
        self._tick = tick
        self._lock = threading.Lock()
        self._calls: dict[int, tuple[float, AnyConnection]] = {}
        self._tokens = itertools.count()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def watch(self, conn: AnyConnection, deadline: float) -> int:
        """Watch ``conn`` until :meth:`release`; severed if still watched at ``deadline``."""
        if self._pid != os.getpid():
            self._start()
        token = next(self._tokens)
        with self._lock:
            self._calls[token] = (deadline, conn)
        return token

    def release(self, token: int) -> None:
        """Stop watching; after this returns the watchdog will not touch the connection."""
        with self._lock:
            self._calls.pop(token, None)

    def _start(self) -> None:
        """Start the watching thread (again in a forked child, which has no threads)."""
        with self._lock:
            if self._pid == os.getpid():
                return
            self._calls = {}
            self._thread = threading.Thread(
                target=self._run, name="seglog-postgres-watchdog", daemon=True
            )
            self._thread.start()
            self._pid = os.getpid()

    def _run(self) -> None:
        while True:
            time.sleep(self._tick)
            now = time.monotonic()
            with self._lock:
                late = [token for token, (deadline, _) in self._calls.items() if deadline <= now]
                # Severed under the lock: a released connection may be closed and its
                # descriptor reused, so only connections still watched are touched.
                for token in late:
                    _, conn = self._calls.pop(token)
                    sever(conn)


def sever(conn: AnyConnection) -> None:
    """Shut down ``conn``'s socket so that any read or write on it fails at once."""
    with contextlib.suppress(OSError, psycopg.Error):
        fd = conn.pgconn.socket
        with socket.socket(fileno=os.dup(fd)) as sock:
            sock.shutdown(socket.SHUT_RDWR)


#: The one watchdog of this process.
WATCHDOG: Final = Watchdog()
