"""Unit tests of the segment writer alone: appends, rollover, and group commit."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from engine import FailedError
from engine.format import FILE_HEADER_SIZE
from engine.location import position
from engine.testing import MemoryFileSystem, Op
from engine.writer import SegmentWriter


def started(fs: MemoryFileSystem, segment_size: int = 1 << 20) -> SegmentWriter:
    writer = SegmentWriter(fs, "/w", segment_size=segment_size)
    fs.makedirs("/w")
    writer.start(1)
    return writer


def test_appends_return_their_positions_and_roll_over_when_a_segment_is_full() -> None:
    writer = started(MemoryFileSystem(), segment_size=FILE_HEADER_SIZE + 100)
    with writer.lock:
        first = writer.append(b"a" * 60)
        second = writer.append(b"b" * 60)  # does not fit: the first segment is sealed
    assert first == position(1, FILE_HEADER_SIZE)
    assert second == position(2, FILE_HEADER_SIZE)
    assert writer.segment_sizes() == {1: FILE_HEADER_SIZE + 60, 2: FILE_HEADER_SIZE + 60}
    assert writer.maps[1][FILE_HEADER_SIZE : FILE_HEADER_SIZE + 60] == b"a" * 60
    writer.close()


def test_an_append_beyond_the_mapping_grows_it() -> None:
    writer = started(MemoryFileSystem(), segment_size=8 << 20)
    with writer.lock:
        for _ in range(3):
            writer.append(b"x" * (700 << 10))
    assert writer.segment_sizes() == {1: FILE_HEADER_SIZE + 3 * (700 << 10)}
    writer.close()


def durable_appends(
    writer: SegmentWriter,
    threads: int,
    each: int,
    after: Callable[[bytes], None] = lambda record: None,
) -> list[BaseException]:
    """``threads`` writers appending and waiting for durability, as ``sync="always"`` puts do.

    ``after(record)`` runs once ``make_durable`` has returned for ``record``.
    """
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(each):
                record = b"%02d-%04d" % (n, i)
                with writer.lock:
                    end = writer.append(record) + len(record)
                writer.make_durable(end)
                after(record)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,), daemon=True) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    assert not any(worker.is_alive() for worker in workers), "a writer hangs"
    return errors


def test_group_commit_covers_each_writer_with_an_fsync_that_began_after_its_append() -> None:
    """Every ``make_durable`` returns only once an fsync that started after the append ended."""
    fs = MemoryFileSystem()
    writer = started(fs)
    covered = [b""]

    def slow_fsync(op: Op) -> None:
        if op[0] == "fsync":
            began_with = bytes(fs.files["/w/0000000001.seg"].data)
            time.sleep(0.001)
            covered[0] = began_with

    fs.hook = slow_fsync
    before = writer.fsyncs
    missing: list[bytes] = []

    def check(record: bytes) -> None:
        if record not in covered[0]:
            missing.append(record)

    assert durable_appends(writer, threads=8, each=30, after=check) == []
    fs.hook = None
    assert missing == []
    assert writer.fsyncs - before < 8 * 30 / 2, "fsyncs were not shared"
    writer.close()


def test_a_failed_fsync_fails_every_waiting_writer_and_every_later_one() -> None:
    fs = MemoryFileSystem()
    writer = started(fs)
    count = [0]

    def failing(op: Op) -> None:
        if op[0] == "fsync":
            count[0] += 1
            time.sleep(0.001)
            if count[0] >= 3:
                raise OSError(5, "EIO")

    fs.hook = failing
    errors = durable_appends(writer, threads=8, each=200)
    assert len(errors) == 8 and all(isinstance(e, FailedError) for e in errors), errors
    with writer.lock, pytest.raises(FailedError):
        writer.append(b"after")
    fs.hook = None
    writer.release()


def test_sync_covers_everything_appended_and_is_free_when_nothing_is_new() -> None:
    fs = MemoryFileSystem()
    writer = started(fs)
    with writer.lock:
        writer.append(b"record")
    writer.sync()
    fsyncs = writer.fsyncs
    writer.sync()
    assert writer.fsyncs == fsyncs
    survivor = fs.after_power_loss()
    assert survivor.read_file("/w/0000000001.seg")[FILE_HEADER_SIZE:].startswith(b"record")
    writer.close()
