"""``PostgresStore`` when the server misbehaves (STORE_API.md rule 18; docs/POSTGRES.md).

Unreachable, silent, stopped (``SIGSTOP``) and restarted servers, and a primary
killed under writes with a synchronous standby promoted in its place. Every
call returns or raises ``UnavailableError`` within its deadline, the same
store object works again afterwards, and every acknowledged write is there.
These tests run on servers of their own, never on the shared one.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from store_api import Record, UnavailableError

if TYPE_CHECKING:
    from store_api import PostgresStore
    from store_api.postgres.server import TemporaryServer

#: The store timeout in these tests, and the slack a loaded machine gets on top of it.
TIMEOUT = 2.0
SLACK = 6.0


def open_store(dsn: str, **options: Any) -> PostgresStore:
    from store_api import PostgresStore

    return PostgresStore(dsn, **{"timeout": TIMEOUT, "reap_interval": 0, **options})


def eventually(call: Callable[[], object], seconds: float = 30.0) -> None:
    """Retry ``call`` through ``UnavailableError`` until it succeeds (the pool recovering)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            call()
            return
        except UnavailableError:
            if time.monotonic() > deadline:
                raise


def timed_unavailable(call: Callable[[], object]) -> float:
    """Seconds until ``call`` raised ``UnavailableError`` (it must)."""
    start = time.monotonic()
    with pytest.raises(UnavailableError):
        call()
    return time.monotonic() - start


@pytest.fixture(scope="module")
def own_server(postgres_server: Any) -> Iterator[TemporaryServer]:
    """A server of this module's own, to stop and restart (ICU database ``faults``)."""
    from store_api.postgres.server import TemporaryServer

    server = TemporaryServer(bindir=postgres_server.bindir).init().start()
    try:
        server.create_database("faults")
        yield server
    finally:
        server.close()


def test_unreachable_server_raises_in_time() -> None:
    from store_api.postgres.server import free_port

    dsn = f"postgresql://postgres@127.0.0.1:{free_port()}/x"
    assert timed_unavailable(lambda: open_store(dsn)) < TIMEOUT + SLACK


def test_silent_server_raises_in_time() -> None:
    """A listener that accepts connections and never says a word."""
    held: list[socket.socket] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(0.2)
        stop = threading.Event()

        def accept() -> None:
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])
                except OSError:
                    continue

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        try:
            dsn = f"postgresql://postgres@127.0.0.1:{listener.getsockname()[1]}/x"
            assert timed_unavailable(lambda: open_store(dsn)) < TIMEOUT + SLACK
        finally:
            stop.set()
            acceptor.join()
            for sock in held:
                sock.close()


def test_server_stopped_mid_session(own_server: TemporaryServer) -> None:
    store = open_store(own_server.dsn("faults"))
    try:
        store.write(Record("before", b"v"))
        own_server.signal_all(signal.SIGSTOP)
        try:
            assert timed_unavailable(lambda: store.write(Record("k", b"v"))) < TIMEOUT + SLACK
            assert timed_unavailable(lambda: store.read("before")) < TIMEOUT + SLACK
            assert timed_unavailable(lambda: store.list()) < TIMEOUT + SLACK
        finally:
            own_server.signal_all(signal.SIGCONT)
        eventually(lambda: store.write(Record("after", b"v")))
        assert store.read("before")[0].value == b"v"
        assert "after" in store.list()
    finally:
        store.disconnect()


def write_until(
    store: PostgresStore, stop: threading.Event, threads: int
) -> tuple[list[threading.Thread], list[set[str]], list[BaseException]]:
    """``threads`` writers, each writing new keys until ``stop``; acknowledged keys and errors."""
    acked: list[set[str]] = [set() for _ in range(threads)]
    errors: list[BaseException] = []

    def writer(index: int) -> None:
        n = 0
        while not stop.is_set():
            key = f"w{index}-{n}"
            n += 1
            try:
                store.write(Record(key, key.encode()))
            except UnavailableError:
                continue
            except BaseException as exc:
                errors.append(exc)
                return
            acked[index].add(key)

    workers = [threading.Thread(target=writer, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    return workers, acked, errors


def finish(workers: list[threading.Thread], stop: threading.Event) -> None:
    stop.set()
    for worker in workers:
        worker.join(TIMEOUT + SLACK * 4)
        assert not worker.is_alive(), "a writer hung"


def wait_for_progress(acked: list[set[str]], more: int) -> None:
    """Block until the writers have acknowledged ``more`` writes beyond now."""
    target = sum(map(len, acked)) + more
    deadline = time.monotonic() + 60
    while sum(map(len, acked)) < target:
        assert time.monotonic() < deadline, "writers made no progress"
        time.sleep(0.05)


def test_restart_under_eight_writers(own_server: TemporaryServer) -> None:
    store = open_store(own_server.dsn("faults"), timeout=5.0)
    stop = threading.Event()
    workers, acked, errors = write_until(store, stop, threads=8)
    try:
        wait_for_progress(acked, 200)
        own_server.restart()
        wait_for_progress(acked, 200)
    finally:
        finish(workers, stop)
    try:
        assert errors == []
        expected = set().union(*acked)
        found = set(store.list(prefix="w"))
        assert expected - found == set()
    finally:
        store.disconnect()


def test_failover_to_a_synchronous_standby(postgres_server: Any) -> None:
    from psycopg.conninfo import make_conninfo

    from store_api.postgres.server import TemporaryServer

    with TemporaryServer(bindir=postgres_server.bindir).init().start() as primary:
        primary.create_database("failover")
        standby = primary.add_synchronous_standby()
        dsn = make_conninfo(
            host="127.0.0.1,127.0.0.1",
            port=f"{primary.port},{standby.port}",
            user="postgres",
            dbname="failover",
            target_session_attrs="read-write",
        )
        store = open_store(dsn, timeout=5.0)
        stop = threading.Event()
        workers, acked, errors = write_until(store, stop, threads=4)
        try:
            wait_for_progress(acked, 200)
            primary.kill()
            standby.promote()
            wait_for_progress(acked, 200)
        finally:
            finish(workers, stop)
        try:
            assert errors == []
            expected = set().union(*acked)
            on_standby = open_store(standby.dsn("failover"))
            try:
                assert expected - set(on_standby.list(prefix="w")) == set()
            finally:
                on_standby.disconnect()
        finally:
            store.disconnect()


def test_async_store_unreachable_raises_in_time() -> None:
    from store_api.aio import AsyncPostgresStore
    from store_api.postgres.server import free_port

    store = AsyncPostgresStore(
        f"postgresql://postgres@127.0.0.1:{free_port()}/x", timeout=TIMEOUT, reap_interval=0
    )
    assert timed_unavailable(lambda: asyncio.run(store.connect())) < TIMEOUT + SLACK


def test_async_store_stopped_server_neither_hangs_nor_blocks_the_loop(
    own_server: TemporaryServer,
) -> None:
    """A stopped server: the call raises in time, and the loop runs other tasks meanwhile."""
    from store_api.aio import AsyncPostgresStore

    async def scenario() -> tuple[int, float]:
        async with AsyncPostgresStore(
            own_server.dsn("faults"), table="aio", timeout=TIMEOUT, reap_interval=0
        ) as store:
            await store.write(Record("before", b"v"))
            ticks = 0

            async def probe() -> None:
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.01)
                    ticks += 1

            own_server.signal_all(signal.SIGSTOP)
            prober = asyncio.create_task(probe())
            start = time.monotonic()
            try:
                with pytest.raises(UnavailableError):
                    await store.write(Record("k", b"v"))
            finally:
                waited = time.monotonic() - start
                prober.cancel()
                own_server.signal_all(signal.SIGCONT)
            deadline = time.monotonic() + 30
            while True:
                try:
                    await store.write(Record("after", b"v"))
                    break
                except UnavailableError:
                    if time.monotonic() > deadline:
                        raise
            assert (await store.read("before"))[0].value == b"v"
            assert "after" in await store.list()
            return ticks, waited

    ticks, waited = asyncio.run(scenario())
    assert waited < TIMEOUT + SLACK
    # A call that blocked the loop would leave the probe no turn at all while it waited.
    assert ticks >= 10, f"the probe ran {ticks} times in {waited:.1f} s"
