"""Sharing an engine between threads and processes: atomicity, snapshots, group commit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from engine import ClosedError, Engine, FailedError
from engine.testing import MemoryFileSystem, Op


def start_threads(count: int, target: Callable[[int], object]) -> list[threading.Thread]:
    """``count`` daemon threads running ``target(n)``, started."""
    threads = [threading.Thread(target=target, args=(n,), daemon=True) for n in range(count)]
    for thread in threads:
        thread.start()
    return threads


def still_running(threads: list[threading.Thread], seconds: float = 20) -> bool:
    """Join ``threads`` within ``seconds`` in all; whether any of them is still running."""
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    return any(thread.is_alive() for thread in threads)


def run_threads(count: int, target: Callable[[int], object]) -> None:
    for thread in start_threads(count, target):
        thread.join()


def delayed_fsyncs(seconds: float) -> Callable[[Op], None]:
    """A file system hook that makes every fsync take ``seconds``, so writers pile up."""

    def hook(op: Op) -> None:
        if op[0] == "fsync":
            time.sleep(seconds)

    return hook


def test_threads_hammering_distinct_keys_lose_nothing(tmp_path: Path) -> None:
    with Engine.open(tmp_path, segment_size=64 << 10) as db:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(2000):
                    key = b"t%d-%d" % (n, i % 50)
                    db.put(key, b"%d" % i)
                    assert db.get(key) == b"%d" % i
                    if i % 7 == 0:
                        db.delete(key)
                        assert db.get(key) is None
                    if i % 100 == 0:
                        list(db.scan(prefix=b"t%d-" % n))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        run_threads(8, work)
        assert not errors
        snapshot = dict(db.scan())
    with Engine.open(tmp_path, segment_size=64 << 10) as db:
        assert dict(db.scan()) == snapshot
        for n in range(8):
            for j in range(50):
                last = max(i for i in range(2000) if i % 50 == j)
                expected = None if last % 7 == 0 else b"%d" % last
                assert db.get(b"t%d-%d" % (n, j)) == expected


def test_concurrent_writers_to_one_key_leave_one_of_their_values(tmp_path: Path) -> None:
    with Engine.open(tmp_path) as db:
        run_threads(6, lambda n: [db.put(b"shared", b"%d-%d" % (n, i)) for i in range(500)])
        final = db.get(b"shared")
        assert final is not None and final.endswith(b"-499")
    with Engine.open(tmp_path) as db:
        assert db.get(b"shared") == final


def test_scans_never_see_half_a_batch(tmp_path: Path) -> None:
    """Batches move a pair of keys together; every scan must see both or neither."""
    with Engine.open(tmp_path, segment_size=32 << 10) as db:
        for i in range(20):
            with db.batch() as batch:
                batch.put(b"pair%02d-a" % i, b"x")
                batch.put(b"pair%02d-b" % i, b"x")
        stop = threading.Event()
        seen_halves: list[bytes] = []

        def flip(n: int) -> None:
            i = 0
            while not stop.is_set():
                pair = b"pair%02d" % (i % 20)
                with db.batch() as batch:
                    if (i // 20) % 2 == 0:
                        batch.delete(pair + b"-a")
                        batch.delete(pair + b"-b")
                    else:
                        batch.put(pair + b"-a", b"%d" % i)
                        batch.put(pair + b"-b", b"%d" % i)
                i += 1

        def scan(n: int) -> None:
            for _ in range(200):
                keys = set(db.scan_keys(prefix=b"pair"))
                for key in keys:
                    other = key[:-1] + (b"b" if key.endswith(b"a") else b"a")
                    if other not in keys:
                        seen_halves.append(key)

        writer = threading.Thread(target=flip, args=(0,))
        writer.start()
        run_threads(3, scan)
        stop.set()
        writer.join()
        assert seen_halves == []


def test_group_commit_shares_fsyncs_between_writers() -> None:
    """With sync="always" and slow fsyncs, 8 writers need far fewer fsyncs than writes."""
    fs = MemoryFileSystem()
    with Engine.open("/s", fs=fs, sync="always") as db:
        fs.hook = delayed_fsyncs(0.002)
        before = db.stats()["fsyncs"]
        run_threads(8, lambda n: [db.put(b"k%d-%d" % (n, i), b"v") for i in range(50)])
        stats = db.stats()
        fs.hook = None
        fsyncs = stats["fsyncs"] - before
        assert stats["writes"] == 400
        assert fsyncs < 400 / 2, fsyncs
        assert stats["fsyncs_per_write"] < 0.5


def test_every_always_write_is_fsynced_before_it_returns() -> None:
    fs = MemoryFileSystem()
    with Engine.open("/s", fs=fs, sync="always") as db:
        for i in range(20):
            db.put(b"k%d" % i, b"v%d" % i)
            survivor = fs.after_power_loss()
            with Engine.open("/s", fs=survivor) as after:
                assert after.get(b"k%d" % i) == b"v%d" % i


def test_every_concurrent_always_write_is_durable_when_it_returns() -> None:
    """A writer woken by someone else's fsync must find its own record on disk.

    An fsync is only trusted to cover the bytes written before it started, so
    the hook keeps, per file, what was there when the last finished fsync began.
    """
    fs = MemoryFileSystem()
    covered: dict[str, bytes] = {}

    def slow_fsync(op: Op) -> None:
        if op[0] == "fsync":
            path = str(op[1])
            started_with = bytes(fs.files[path].data)
            time.sleep(0.001)
            covered[path] = started_with

    missing: list[bytes] = []
    with Engine.open("/s", fs=fs, sync="always") as db:
        fs.hook = slow_fsync
        before = db.stats()["fsyncs"]

        def work(n: int) -> None:
            for i in range(30):
                key = b"writer%02d-key%03d" % (n, i)
                db.put(key, b"v")
                if not any(key in data for data in list(covered.values())):
                    missing.append(key)

        run_threads(8, work)
        fs.hook = None
        fsyncs = db.stats()["fsyncs"] - before
    assert missing == []
    assert fsyncs < 8 * 30 / 2, fsyncs


def test_a_failed_group_fsync_fails_every_waiting_writer() -> None:
    """No writer may hang or return success when the fsync it waited for failed."""
    fs = MemoryFileSystem()
    fsyncs = [0]

    def failing_fsync(op: Op) -> None:
        if op[0] == "fsync":
            fsyncs[0] += 1
            time.sleep(0.001)
            if fsyncs[0] >= 5:
                raise OSError(5, "EIO")

    outcomes: list[BaseException] = []
    db = Engine.open("/s", fs=fs, sync="always")
    fs.hook = failing_fsync

    def work(n: int) -> None:
        try:
            for i in range(1000):
                db.put(b"k%d-%d" % (n, i), b"v")
        except BaseException as exc:
            outcomes.append(exc)

    assert not still_running(start_threads(8, work))
    assert len(outcomes) == 8
    assert all(isinstance(exc, FailedError) for exc in outcomes), outcomes
    fs.hook = None
    db.close()


def test_writers_left_waiting_always_have_a_leader(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader that finishes with writers still waiting offers one of them the lead.

    Were the next waiter merely woken, one whose record a rollover had
    meanwhile made durable, or which found the store closed, would return and
    leave the rest asleep with no leader to wake them until some later write
    came along. The offer stays on record until the writer offered it takes it
    or passes it on.
    """
    fs = MemoryFileSystem()
    handoffs: list[bool] = []
    with Engine.open("/s", fs=fs, sync="always", segment_size=1024) as db:
        writer = db.internals.writer

        def checked(step: Callable[..., None]) -> Callable[..., None]:
            def run(*args: int) -> None:
                try:
                    step(*args)
                finally:
                    with writer.group_lock:
                        if writer.waiters:
                            handoffs.append(writer.syncing or writer.offered_lead is not None)

            return run

        monkeypatch.setattr(writer, "_lead_fsync", checked(writer._lead_fsync))
        monkeypatch.setattr(writer, "make_durable", checked(writer.make_durable))
        fs.hook = delayed_fsyncs(0.0005)
        run_threads(8, lambda n: [db.put(b"k%d-%d" % (n, i), b"v" * 40) for i in range(40)])
        fs.hook = None
    assert handoffs, "no fsync finished with writers still waiting: nothing was tested"
    assert all(handoffs), f"{handoffs.count(False)} of {len(handoffs)} checks found no leader"


class Interrupted(Exception):
    """Raised by a timer signal in the main thread, as Ctrl-C would raise KeyboardInterrupt."""


def test_a_writer_interrupted_while_waiting_does_not_strand_the_others() -> None:
    """The first waiter is interrupted; the next must still be offered the lead."""
    fs = MemoryFileSystem()
    in_fsync, let_fsync_finish = threading.Event(), threading.Event()

    def held_fsync(op: Op) -> None:
        if op[0] == "fsync" and not let_fsync_finish.is_set():
            in_fsync.set()
            let_fsync_finish.wait(10)

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    db = Engine.open("/s", fs=fs, sync="always")
    writer = db.internals.writer
    fs.hook = held_fsync
    leader = threading.Thread(target=db.put, args=(b"first", b"1"), daemon=True)
    leader.start()
    assert in_fsync.wait(10)

    def second() -> None:
        give_up = time.monotonic() + 10
        while not writer.waiters and time.monotonic() < give_up:  # queue behind the main thread
            time.sleep(0.001)
        db.put(b"second", b"2")

    follower = threading.Thread(target=second, daemon=True)
    follower.start()
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(Interrupted):
            db.put(b"third", b"3")  # waits first in line, until the timer interrupts it
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    let_fsync_finish.set()
    leader.join(10)
    follower.join(10)
    assert not leader.is_alive() and not follower.is_alive(), "a writer was left without a leader"
    assert db.get(b"second") == b"2"
    fs.hook = None
    db.close()


def test_closing_under_durable_writers_leaves_none_hanging_and_loses_nothing() -> None:
    """Writers racing ``close`` end (done or ClosedError); every acknowledged write is kept."""
    for attempt in range(20):
        close_under_writers(delay=0.002 * (attempt % 10))


def close_under_writers(delay: float) -> None:
    """Close while 8 writers put: their fsyncs take a while, close's are instant, so
    close usually lands while a leader's fsync runs and finishes just as it ends."""
    fs = MemoryFileSystem()
    db = Engine.open("/s", fs=fs, sync="always", segment_size=2048)
    closer = threading.current_thread()

    def slow_writer_fsync(op: Op) -> None:
        if op[0] == "fsync" and threading.current_thread() is not closer:
            time.sleep(0.0005)

    fs.hook = slow_writer_fsync
    acknowledged: list[list[bytes]] = [[] for _ in range(8)]
    outcomes: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(2000):
                key = b"k%d-%d" % (n, i)
                db.put(key, b"v" * 40)
                acknowledged[n].append(key)
        except BaseException as exc:
            outcomes.append(exc)

    threads = start_threads(8, work)
    time.sleep(delay)
    db.close()
    assert not still_running(threads), "a writer hangs after close"
    assert all(isinstance(exc, ClosedError) for exc in outcomes), outcomes
    with Engine.open("/s", fs=fs.after_power_loss()) as again:
        for keys in acknowledged:
            assert all(again.get(key) == b"v" * 40 for key in keys)


WRITER = """
import sys
from engine import Engine
db = Engine.open(sys.argv[1], sync=sys.argv[2], segment_size=4096)
i = 0
while True:
    with db.batch() as batch:
        for j in range(10):
            batch.put(b"k%d" % j, b"%d" % i)
    print(i, flush=True)
    i += 1
"""


def test_sigkill_during_batches_never_leaves_a_partial_batch(tmp_path: Path) -> None:
    for mode in ("none", "periodic", "always"):
        store = tmp_path / mode
        proc = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(store), mode],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        acknowledged = -1
        for line in proc.stdout:
            acknowledged = int(line)
            if acknowledged >= 300:
                break
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with Engine.open(store, segment_size=4096) as db:
            values = {db.get(b"k%d" % j) for j in range(10)}
            assert len(values) == 1, values
            (value,) = values
            assert value is not None and int(value) >= acknowledged
