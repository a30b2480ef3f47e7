"""Every counterexample the crash tiers found, pinned: each failed before its fix.

The first group are short programs checked at every crash point under every
crash kind (the exhaustive tier's check); the second spell out single scenarios.
"""

from __future__ import annotations

import pytest

from engine import Engine
from engine.options import SyncMode
from engine.testing import Action, Checker, CrashSimulator, quiet_logs

put_a, put_b = Action("put", b"a"), Action("put", b"b")
delete_a = Action("delete", b"a")
sync, reopen = Action("sync"), Action("reopen")

#: (sync mode, program) pairs that once broke a promise.
PROGRAMS: list[tuple[SyncMode, tuple[Action, ...]]] = [
    # The store directory was created but its entry in the parent never fsynced.
    ("always", (put_a,)),
    # A crash between creating a segment and fsyncing the directory, then a reopen.
    ("always", (put_a, reopen, put_b)),
    # A full newest segment after a SIGKILL: recovery started a new segment
    # while the old one's last record was only in the page cache.
    ("always", (put_a, put_a)),
    ("none", (put_a, put_a, sync)),
    # Power loss kept a later record but not an earlier one (unwritten pages).
    ("none", (put_a, put_a)),
    ("none", (put_a, delete_a)),
]


@pytest.mark.parametrize(("sync_mode", "program"), PROGRAMS)
def test_program_keeps_every_promise(sync_mode: SyncMode, program: tuple[Action, ...]) -> None:
    checker = Checker(sync=sync_mode)
    with quiet_logs():
        violations = checker.run_workload(program)
    assert not violations, "\n".join(str(v) for v in violations[:5])


def test_store_directory_survives_power_loss() -> None:
    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="always")
    db.put(b"k", b"v")
    with Engine.open("/db", fs=sim.power_loss().filesystem(), sync="always") as recovered:
        assert recovered.get(b"k") == b"v"


def test_sync_after_recovering_from_sigkill_covers_what_recovery_served() -> None:
    """A SIGKILL leaves a full segment in the page cache only; sync must still cover it."""
    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="none", segment_size=128)
    db.put(b"a", b"1" * 26)
    db.put(b"b", b"2" * 26)  # fills the segment exactly: the next open starts a new one
    sim.restart(sim.process_crash())
    db = Engine.open("/db", fs=sim.fs, sync="none", segment_size=128)
    assert dict(db.scan()) == {b"a": b"1" * 26, b"b": b"2" * 26}
    db.sync()
    with Engine.open("/db", fs=sim.power_loss().filesystem(), segment_size=128) as recovered:
        assert dict(recovered.scan()) == {b"a": b"1" * 26, b"b": b"2" * 26}


def test_unwritten_pages_in_the_unsynced_tail_are_a_torn_tail() -> None:
    """Power loss wrote the second record's page but not the first's: open cuts there."""
    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="none")
    db.put(b"a", b"first")
    db.put(b"b", b"second")
    tracker = sim.catch_up()
    (first,) = [i for i, p in enumerate(tracker.pending) if b"first" in p.data]
    (hole,) = [s for s in sim.crash_states() if s.detail.startswith(f"all but op {first} ")]
    fs = hole.filesystem()
    with Engine.open("/db", fs=fs) as recovered:
        assert dict(recovered.scan()) == {}
        assert recovered.stats()["recovery"]["truncated_bytes"] > 0
        recovered.put(b"c", b"third")
    with Engine.open("/db", fs=fs) as again:
        assert dict(again.scan()) == {b"c": b"third"}


def test_batch_commit_with_a_value_of_the_wrong_size_is_not_a_struct_error() -> None:
    """Found by the segment-recovery fuzz property: a CRC-valid commit record whose
    value is not the 4-byte count made recovery raise struct.error."""
    from engine.format import FileKind, RecordType, encode_file_header, encode_record
    from engine.testing import MemoryFileSystem

    fs = MemoryFileSystem()
    fs.makedirs("/s")
    log = encode_file_header(FileKind.SEGMENT) + encode_record(RecordType.PUT, 1, 0.0, b"k", b"v")
    log += encode_record(RecordType.BATCH_PUT, 2, 0.0, b"b", b"w")
    log += encode_record(RecordType.BATCH_COMMIT, 3, 0.0, b"", b"12345")
    fs.open("/s/0000000001.seg", create=True).write(log)
    with Engine.open("/s", fs=fs) as db:
        assert dict(db.scan()) == {b"k": b"v"}
        assert db.stats()["recovery"]["incomplete_batches"] == 1


def test_recovery_syncs_the_newest_log_segment_not_a_compacted_one() -> None:
    """Found by the mutant 'drop fsync in recovery._truncate': with compacted segments
    (whose ids sort above log segments) recovery fsynced a compacted segment instead of
    the newest log segment, so a SIGKILL then a power cut lost what recovery served."""
    compact = Action("compact")
    for sync_mode in ("always", "none"):
        checker = Checker(sync=sync_mode, kinds=("process", "power/prefix"))
        with quiet_logs():
            violations = checker.run_workload((put_a, put_a, compact, put_a, put_a))
        assert not violations, "\n".join(str(v) for v in violations[:5])


def test_a_batch_whose_first_sector_never_arrived_is_a_torn_tail() -> None:
    """Found by the Hypothesis tier: a multi-record write crossing a sector boundary
    reached the disk without its first sector; the records after the boundary were
    valid, so recovery called it corruption and refused to open the store."""
    sim = CrashSimulator()
    db = Engine.open("/db", fs=sim.fs, sync="none")
    db.put(b"a", b"x" * 440)  # the batch below starts in the first sector, ends in the next
    with db.batch() as batch:
        batch.delete(b"a")
        batch.put(b"b", b"y" * 40)
    suffixes = sim.crash_states(("power/torn-suffix",))
    assert suffixes
    for state in suffixes:
        with Engine.open("/db", fs=state.filesystem()) as recovered:
            assert dict(recovered.scan()) in ({}, {b"a": b"x" * 440})


@pytest.mark.parametrize("sync_mode", ["always", "none"])
def test_a_batch_killed_while_being_stored_is_a_torn_tail(sync_mode: SyncMode) -> None:
    """memcpy stores a long copy's first bytes last: a kill could keep later records only.

    A batch stored as one copy then left its later records whole behind a
    first record that was not, and recovery refused the store ("damaged record
    followed by valid records"): found by a 10-minute soak, once in about 400
    SIGKILLs.
    """
    batch = Action("batch", items=((b"a", True), (b"b", True), (b"a", False), (b"b", True)))
    checker = Checker(sync=sync_mode, kinds=("process", "process/torn-store"))
    with quiet_logs():
        violations = checker.run_workload((put_a, batch, put_b))
    assert not violations, "\n".join(str(v) for v in violations[:5])
    assert checker.figures.kinds["process/torn-store"] > 0
