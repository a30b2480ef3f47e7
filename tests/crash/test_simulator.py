"""The crash simulator and the oracle themselves: a harness is only as good as its model."""

from __future__ import annotations

import pytest

from engine import Engine
from engine.testing import (
    CRASH_KINDS,
    Bounds,
    CrashSimulator,
    DiskImage,
    History,
    MemoryFileSystem,
    SimulatedCrash,
    Tracker,
)


def files(sim: CrashSimulator, kind: str) -> list[dict[str, bytes]]:
    return [s.image.file_dict() for s in sim.crash_states((kind,))]


def test_power_loss_keeps_only_what_was_synced() -> None:
    sim = CrashSimulator()
    fs = sim.fs
    fs.makedirs("/d")
    handle = fs.open("/d/f", create=True)
    handle.write(b"synced")
    handle.fsync()
    fs.fsync_dir("/d")
    handle.write(b"+pending")
    assert sim.power_loss().image.file_dict() == {"/d/f": b"synced"}
    assert sim.process_crash().image.file_dict() == {"/d/f": b"synced+pending"}


def test_prefixes_follow_issue_order_across_files() -> None:
    sim = CrashSimulator(DiskImage.of({"/a": b"", "/b": b""}, ["/"]))
    a, b = sim.fs.open("/a"), sim.fs.open("/b")
    a.write(b"1")
    b.write(b"2")
    a.write(b"3")
    assert files(sim, "power/prefix") == [
        {"/a": b"", "/b": b""},
        {"/a": b"1", "/b": b""},
        {"/a": b"1", "/b": b"2"},
        {"/a": b"13", "/b": b"2"},
    ]
    # Writes are positional: the second write to /a lands at offset 1 even if the first is lost.
    assert {"/a": b"\x003", "/b": b"2"} in files(sim, "power/drop-one")
    assert {"/a": b"1", "/b": b""} in files(sim, "power/file-prefix")


def test_torn_writes_cut_zero_garbage_and_suffix() -> None:
    sim = CrashSimulator(DiskImage.of({"/f": b"ok"}, ["/"]))
    sim.fs.open("/f").write(b"abcdef")
    cut = files(sim, "power/torn-cut")
    assert {"/f": b"oka"} in cut and {"/f": b"okabc"} in cut and {"/f": b"okabcde"} in cut
    assert files(sim, "power/torn-zero") == [{"/f": b"ok" + bytes(6)}]
    (garbage,) = files(sim, "power/torn-garbage")
    assert len(garbage["/f"]) == 8 and garbage["/f"][2:] != b"abcdef" and all(garbage["/f"][2:])
    assert files(sim, "power/torn-suffix") == []  # the write does not cross a sector boundary


def test_a_write_torn_out_of_order_loses_whole_sectors() -> None:
    sim = CrashSimulator(DiskImage.of({"/f": bytes(500)}, ["/"]))
    sim.fs.open("/f").write(b"x" * 600)
    first, second = files(sim, "power/torn-suffix")
    assert first["/f"] == bytes(512) + b"x" * 588
    assert second["/f"] == bytes(1024) + b"x" * 76


def test_directory_entries_need_a_directory_fsync() -> None:
    sim = CrashSimulator()
    fs = sim.fs
    fs.makedirs("/d")  # durable: makedirs fsyncs the parent
    handle = fs.open("/d/new", create=True)
    handle.write(b"data")
    handle.fsync()  # the data is durable, the name is not
    assert sim.power_loss().image.file_dict() == {}
    assert {"/d/new": b"data"} in files(sim, "power/prefix")
    fs.fsync_dir("/d")
    assert sim.power_loss().image.file_dict() == {"/d/new": b"data"}


def test_rename_and_unlink_are_lost_without_a_directory_fsync() -> None:
    sim = CrashSimulator(DiskImage.of({"/d/old": b"x", "/d/tmp": b"y"}, ["/", "/d"]))
    sim.fs.replace("/d/tmp", "/d/old")
    assert sim.process_crash().image.file_dict() == {"/d/old": b"y"}
    assert sim.power_loss().image.file_dict() == {"/d/old": b"x", "/d/tmp": b"y"}
    (lost,) = files(sim, "power/dir-lost")
    assert lost == {"/d/old": b"x", "/d/tmp": b"y"}


def test_a_lost_directory_operation_takes_later_ones_with_it() -> None:
    sim = CrashSimulator(DiskImage.of({"/d/a": b"a"}, ["/", "/d"]))
    sim.fs.open("/d/b", create=True)
    sim.fs.unlink("/d/a")
    # Dropping the create also drops the later unlink of the same directory.
    assert {"/d/a": b"a"} in files(sim, "power/drop-one")
    assert {"/d/b": b""} not in files(sim, "power/drop-one")[:1]


def test_an_unsynced_mkdir_loses_everything_under_it() -> None:
    fs = MemoryFileSystem()
    tracker = Tracker()
    for op in [("mkdir", "/d"), ("create", "/d/f"), ("fsync_dir", "/d")]:
        tracker.apply(op)
    assert tracker.durable().image().file_dict() == {}
    assert fs.listdir("/") == []


def test_a_process_crash_keeps_pending_durability_for_the_next_power_cut() -> None:
    sim = CrashSimulator(DiskImage.of({"/f": b""}, ["/"]))
    sim.fs.open("/f").write(b"in the page cache")
    sim.restart(sim.process_crash())
    assert sim.fs.read_file("/f") == b"in the page cache"
    assert sim.power_loss().image.file_dict() == {"/f": b""}


def test_arm_stops_the_machine_at_the_nth_operation() -> None:
    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="always")
    before = sim.ops
    sim.arm(1)
    with pytest.raises(SimulatedCrash):
        db.put(b"k", b"v")
    assert sim.ops == before + 1 and sim.crashed
    with pytest.raises(SimulatedCrash):
        sim.fs.open("/db/x", create=True)  # the machine stays down
    states = sim.crash_states()
    assert {s.kind for s in states} <= set(CRASH_KINDS)
    for state in states:
        with Engine.open("/db", fs=state.filesystem()) as recovered:
            assert recovered.get(b"k") in (None, b"v")


def test_states_are_snapshots() -> None:
    sim = CrashSimulator(DiskImage.of({"/f": b""}, ["/"]))
    sim.fs.open("/f").write(b"1")
    states = sim.crash_states()
    sim.fs.open("/f").write(b"2")
    sim.catch_up()
    assert all(b"2" not in s.image.file_dict()["/f"] for s in states)


def test_oracle_accepts_legal_prefixes_only() -> None:
    history = History()
    history.record("put a", {b"a": (b"1", 0.0)}, durable=True)
    history.record("put a", {b"a": (b"2", 0.0)})
    history.begin("delete a", {})
    power = history.bounds(0.0, power_loss=True)
    assert power == Bounds(1, 3, 0.0)
    assert history.check({b"a": b"1"}, power) == []
    assert history.check({b"a": b"2"}, power) == []
    assert history.check({}, power) == []  # the delete was in flight
    assert "lost" in history.check({}, Bounds(1, 2, 0.0))[0]
    assert "never written" in history.check({b"a": b"3"}, power)[0]
    assert "resurrected" in history.check({b"b": b"1"}, power)[-1]
    process = history.bounds(0.0, power_loss=False)
    assert history.check({b"a": b"1"}, process) != []


def test_oracle_honours_expiry_at_reopen_time() -> None:
    history = History()
    history.record("put a ttl", {b"a": (b"1", 10.0)}, durable=True)
    assert history.check({}, Bounds(1, 1, 10.0)) == []
    assert history.check({b"a": b"1"}, Bounds(1, 1, 9.0)) == []
    assert history.check({b"a": b"1"}, Bounds(1, 1, 10.0)) != []
