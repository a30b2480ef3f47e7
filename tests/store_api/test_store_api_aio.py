"""``store_api.aio`` beyond the conformance suite: what runs off the event loop, and the lifecycle.

The conformance and model suites run ``AsyncLogStore`` through ``BlockingStore``
(conftest). These tests check what those cannot see: that no file operation
ever happens on the loop's thread, that the loop keeps running while a durable
write waits for its fsync, and that durable writers still share fsyncs.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
from pathlib import Path
from typing import Any

import pytest

import store_api.aio
from engine import LockedError
from engine.testing import MemoryFileSystem, Op
from store_api import LogStore, NotFoundError, Record, Store
from store_api.aio import AsyncLogStore, AsyncStore


class ThreadRecorder:
    """A file system hook noting which thread ran each file operation."""

    def __init__(self) -> None:
        self.threads: dict[int, list[str]] = {}

    def __call__(self, op: Op) -> None:
        self.threads.setdefault(threading.get_ident(), []).append(op[0])


def test_names_and_interface() -> None:
    assert set(store_api.aio.__all__) >= {"AsyncStore", "AsyncLogStore"}
    assert issubclass(AsyncLogStore, AsyncStore)
    for name in ("init", "connect", "options", "read", "write", "delete", "list", "disconnect"):
        assert getattr(Store, name).__isabstractmethod__
        assert inspect.iscoroutinefunction(getattr(AsyncStore, name)), name
        assert inspect.iscoroutinefunction(getattr(AsyncLogStore, name)), name
    assert str(AsyncLogStore("/nonexistent/never-opened")) == "seglog"


async def exercise(store: AsyncLogStore) -> None:
    """Every kind of call, with rollovers, a reopening init and a reconnect."""
    async with store:

        async def writer(task: int) -> None:
            for i in range(40):
                await store.write(
                    Record(f"k{task}-{i:03d}", bytes(200)), ttl=3600 if i % 2 else None
                )
                assert (await store.read(f"k{task}-{i:03d}"))[0].value == bytes(200)

        await asyncio.gather(*(writer(task) for task in range(8)))
        await store.delete("k0-000")
        assert len(await store.read("k1-", prefix=True)) == 40
        assert len(await store.read("-001", suffix=True)) == 8
        assert len(await store.list(prefix="k2")) == 40
        many = (Record(f"many{i:02d}", b"%d" % i) for i in range(30))
        assert await store.write_many(many, table="bulk") == 30
        assert (await store.read("many07", table="bulk"))[0].value == b"7"
        assert len(await store.list(table="bulk")) == 30
        await store.init(table="other")
        await store.write(Record("t", b"v"))
        await store.init(sync="periodic")  # a storage option: reopens the engine
        assert (await store.read("t"))[0].value == b"v"
    await store.write(Record("after", b"reconnects by itself"))
    assert (await store.read("after"))[0].value == b"reconnects by itself"
    await store.disconnect()


def test_no_file_operation_runs_on_the_event_loop_thread() -> None:
    fs = MemoryFileSystem()
    recorder = ThreadRecorder()
    fs.hook = recorder
    store = AsyncLogStore("/store", fs=fs, sync="always", segment_size=8192)

    async def main() -> int:
        await exercise(store)
        return threading.get_ident()

    loop_thread = asyncio.run(main())
    ops = [op for names in recorder.threads.values() for op in names]
    assert ops.count("fsync") > 20  # durable writes and several rollovers did happen
    assert len([name for name in fs.files if name.endswith(".seg")]) > 3
    assert loop_thread not in recorder.threads, recorder.threads.get(loop_thread)


def test_the_loop_runs_while_a_durable_write_waits_for_its_fsync() -> None:
    fs = MemoryFileSystem()
    armed = threading.Event()
    entered = threading.Event()
    release = threading.Event()

    def hook(op: Op) -> None:
        if op[0] == "fsync" and armed.is_set():
            entered.set()
            release.wait(timeout=10)  # a write run on the loop would hold it here

    fs.hook = hook

    async def main() -> None:
        async with AsyncLogStore("/store", fs=fs, sync="always") as store:
            await store.write(Record("before", b"1"))
            armed.set()
            write = asyncio.create_task(store.write(Record("slow", b"2")))
            for _ in range(3000):
                if entered.is_set():
                    break
                await asyncio.sleep(0.01)
            assert entered.is_set()
            assert not write.done()  # still waiting for the fsync ...
            assert (await store.read("before"))[0].value == b"1"  # ... while the loop serves
            with pytest.raises(NotFoundError):
                await store.read("missing")
            release.set()
            await write
            assert (await store.read("slow"))[0].value == b"2"

    asyncio.run(main())


def test_durable_writers_on_one_loop_share_fsyncs() -> None:
    fs = MemoryFileSystem()
    fsyncs: list[int] = []

    def hook(op: Op) -> None:
        if op[0] == "fsync":
            fsyncs.append(1)
            threading.Event().wait(0.005)  # a disk that takes a while, so writers pile up

    async def main() -> None:
        async with AsyncLogStore("/store", fs=fs, sync="always") as store:
            fs.hook = hook

            async def writer(task: int) -> None:
                for i in range(20):
                    await store.write(Record(f"k{task}-{i}", b"v"))

            await asyncio.gather(*(writer(task) for task in range(8)))
            fs.hook = None

    asyncio.run(main())
    assert 0 < len(fsyncs) < 160  # fewer fsyncs than writes: they were shared


def test_construction_does_no_io_and_async_with_releases_everything(tmp_path: Path) -> None:
    path = tmp_path / "store"
    store = AsyncLogStore(path, sync="always")
    assert not path.exists() and not store.connected
    assert "disconnected" in repr(store)

    async def main() -> None:
        async with store as entered:
            assert entered is store and store.connected
            await store.write(Record("k", b"v"))
            assert any(t.name.startswith("seglog-aio") for t in threading.enumerate())
        assert not store.connected
        assert not any(t.name.startswith("seglog-aio") for t in threading.enumerate())

    asyncio.run(main())
    with LogStore(path) as again:  # the directory was released
        assert again.read("k")[0].value == b"v"


def test_a_held_directory_fails_fast_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with LogStore(path):

        async def main() -> None:
            with pytest.raises(LockedError, match="store"):
                async with AsyncLogStore(path):
                    pass

        asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_threads": 0}, ValueError),
        ({"max_threads": True}, TypeError),
        ({"max_threads": "8"}, TypeError),
        ({"sync": "sometimes"}, ValueError),
    ],
)
def test_bad_options_raise_at_construction(tmp_path: Path, options: Any, error: Any) -> None:
    with pytest.raises(error):
        AsyncLogStore(tmp_path / "store", **options)
    assert not (tmp_path / "store").exists()


def test_one_store_serves_several_loops_in_turn(tmp_path: Path) -> None:
    store = AsyncLogStore(tmp_path / "store")

    async def write() -> None:
        await store.write(Record("k", b"v"))
        await store.disconnect()

    async def read() -> bytes:
        value = (await store.read("k"))[0].value
        await store.disconnect()
        return value

    asyncio.run(write())
    assert asyncio.run(read()) == b"v"
