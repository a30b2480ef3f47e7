"""A throwaway PostgreSQL server on loopback, for tests, benchmarks and trying things out.

``TemporaryServer`` runs ``initdb`` into a temporary directory and ``pg_ctl
start`` on a free loopback port, using the server binaries of the machine
(Debian's ``postgresql`` package puts them in ``/usr/lib/postgresql/N/bin``;
``$SEGLOG_PG_BINDIR`` overrides). ``initdb`` refuses to run as root, so as root
the directory belongs to the ``postgres`` user and every server command runs
through ``runuser -u postgres --``. Databases are created with an ICU collation
(``en-US``), as production servers usually have, so that the store's byte order
never depends on a C-locale test server.

A primary can get a synchronous standby (``pg_basebackup -R``), for failover tests.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Final, Self

#: Where Debian's postgresql packages put the server binaries.
DEBIAN_BINDIRS: Final = "/usr/lib/postgresql/*/bin"
#: How long a server command (start, stop, promote, backup) may take.
COMMAND_TIMEOUT: Final = 120.0
#: The superuser every TemporaryServer creates; trust authentication on loopback only.
SUPERUSER: Final = "postgres"


class ServerUnavailable(RuntimeError):
    """No PostgreSQL server binaries on this machine, or the server would not start."""


def find_bindir() -> str:
    """The directory of ``initdb``/``pg_ctl``: ``$SEGLOG_PG_BINDIR``, else the newest Debian one."""
    override = os.environ.get("SEGLOG_PG_BINDIR")
    candidates = [override] if override else []
    candidates += sorted(glob.glob(DEBIAN_BINDIRS), key=_version, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    for bindir in candidates:
        if os.access(os.path.join(bindir, "initdb"), os.X_OK):
            return bindir
    raise ServerUnavailable(
        "no PostgreSQL server found (install Debian's postgresql package, "
        "or set SEGLOG_PG_BINDIR to the directory holding initdb and pg_ctl)"
    )


def _version(bindir: str) -> int:
    """The major version in a Debian bindir path, for picking the newest."""
    name = os.path.basename(os.path.dirname(bindir))
    return int(name) if name.isdigit() else 0


def free_port() -> int:
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class TemporaryServer:
    """One PostgreSQL cluster in its own temporary directory, on one loopback port."""

    def __init__(self, root: str | None = None, *, bindir: str | None = None) -> None:
        self.bindir = bindir or find_bindir()
        self._owns_root = root is None
        self.root = root or tempfile.mkdtemp(prefix="seglog-pg-")
        self.data = os.path.join(self.root, "data")
        self.log = os.path.join(self.root, "server.log")
        self.port = free_port()
        self.standby: TemporaryServer | None = None
        self._as_postgres = os.geteuid() == 0
        os.makedirs(self.root, exist_ok=True)
        if self._as_postgres:
            os.chmod(self.root, 0o755)
            shutil.chown(self.root, SUPERUSER, SUPERUSER)

    # -- running commands ----------------------------------------------------

    def _command(self, name: str, *args: str) -> list[str]:
        """A server command line, through runuser when we are root."""
        argv = [os.path.join(self.bindir, name), *args]
        return ["runuser", "-u", SUPERUSER, "--", *argv] if self._as_postgres else argv

    def run(self, name: str, *args: str) -> str:
        """Run a server command; its output, or ``ServerUnavailable`` naming the log."""
        try:
            done = subprocess.run(
                self._command(name, *args),
                capture_output=True,
                text=True,
                timeout=COMMAND_TIMEOUT,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ServerUnavailable(f"{name} failed: {exc}") from exc
        if done.returncode:
            raise ServerUnavailable(
                f"{name} {' '.join(args)} exited {done.returncode}: "
                f"{done.stderr.strip() or done.stdout.strip()}\n{self.log_tail()}"
            )
        return done.stdout

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server log, for error messages."""
        try:
            with open(self.log, encoding="utf-8", errors="replace") as log:
                return "".join(log.readlines()[-lines:])
        except OSError:
            return ""

    # -- lifecycle -----------------------------------------------------------

    def init(self) -> Self:
        """``initdb`` with trust authentication for loopback connections only."""
        self.run(
            "initdb",
            "-D",
            self.data,
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        self.configure()
        return self

    def configure(self, **settings: str) -> None:
        """Append settings to postgresql.conf (loopback only, our port, small footprint)."""
        base = {
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": "''",
            "max_connections": "100",
            "shared_buffers": "'32MB'",
            "logging_collector": "off",
        }
        base.update(settings)
        with open(os.path.join(self.data, "postgresql.conf"), "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {value}\n" for name, value in base.items())

    def start(self) -> Self:
        """``pg_ctl start`` and wait until the server accepts connections."""
        self.run("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "60", "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        """``pg_ctl stop`` (``fast`` rolls back clients; ``immediate`` is a crash)."""
        self.run("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "60", "stop")

    def restart(self) -> None:
        """Stop (fast) and start again on the same port."""
        self.stop()
        self.start()

    def postmaster_pid(self) -> int:
        """The server's main process id (from postmaster.pid)."""
        with open(os.path.join(self.data, "postmaster.pid"), encoding="ascii") as pidfile:
            return int(pidfile.readline())

    def pids(self) -> list[int]:
        """The postmaster and every process it started (backends, walwriter, ...)."""
        main = self.postmaster_pid()
        return [main, *_children(main)]

    def signal_all(self, signum: signal.Signals) -> None:
        """Send ``signum`` to the postmaster and all its children (SIGSTOP/SIGCONT/SIGKILL)."""
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def kill(self) -> None:
        """SIGKILL the whole server, as a machine dying would (no shutdown at all)."""
        pids = self.pids()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.05)

    def close(self) -> None:
        """Stop the server (and its standby) if running and remove the directory."""
        if self.standby is not None:
            self.standby.close()
        if os.path.exists(os.path.join(self.data, "postmaster.pid")):
            with contextlib.suppress(ServerUnavailable, OSError, ValueError):
                self.signal_all(signal.SIGCONT)
                self.stop("immediate")
        if self._owns_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- addresses and databases ----------------------------------------------

    def dsn(self, dbname: str = "postgres", **params: str) -> str:
        """A libpq URL for ``dbname`` on this server."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=dbname, **params
        )

    def url(self, dbname: str) -> str:
        """A ``postgresql://`` URL for ``dbname`` (ASCII names only, as used by tests)."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str) -> str:
        """Create database ``name`` with the ICU ``en-US`` collation; its DSN."""
        import psycopg
        from psycopg import sql

        statement = sql.SQL(
            "CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' "
            "LOCALE_PROVIDER icu ICU_LOCALE 'en-US'"
        ).format(sql.Identifier(name))
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=30) as conn:
            conn.execute(statement)
        return self.dsn(name)

    # -- replication ------------------------------------------------------------

    def add_synchronous_standby(self) -> TemporaryServer:
        """A streaming standby of this (running) server that every commit waits for."""
        standby = TemporaryServer(os.path.join(self.root, "standby"), bindir=self.bindir)
        standby._owns_root = False
        self.run(
            "pg_basebackup",
            "-D",
            standby.data,
            "-R",
            "-X",
            "stream",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "--no-sync",
            "--checkpoint=fast",
        )
        standby.configure(hot_standby="on")
        standby.start()
        self.configure(synchronous_standby_names="'*'")
        self.run("pg_ctl", "-D", self.data, "reload")
        self.standby = standby
        self._wait_for_synchronous_standby()
        return standby

    def _wait_for_synchronous_standby(self) -> None:
        """Block until the primary reports a standby in ``sync`` state."""
        import psycopg

        deadline = time.monotonic() + COMMAND_TIMEOUT
        with psycopg.connect(self.dsn(), autocommit=True, connect_timeout=30) as conn:
            while time.monotonic() < deadline:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
                ).fetchone()
                if row is not None and row[0]:
                    return
                time.sleep(0.1)
        raise ServerUnavailable(f"the standby never became synchronous\n{self.log_tail()}")

    def promote(self) -> None:
        """Turn this standby into a primary (waits until it accepts writes)."""
        self.run("pg_ctl", "-D", self.data, "-w", "-t", "60", "promote")


def _children(parent: int) -> list[int]:
    """Processes whose parent is ``parent``, from /proc (no procps needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                # "pid (comm) state ppid ...": comm may hold spaces, so split after ")".
                fields = stat.read().rpartition(")")[2].split()
        except OSError:
            continue
        if len(fields) > 1 and int(fields[1]) == parent:
            found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
