"""Recovery on open: torn tails, damage in sealed segments, the recovery modes, batches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine import CorruptionError, Engine
from engine.format import FILE_HEADER_SIZE
from engine.reader import DamagedRegion, ScannedRecord, SegmentReader
from engine.testing import MemoryFileSystem


def segments(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix == ".seg")


def swap_first_two_segments(directory: Path) -> None:
    """Exchange the contents of the two oldest segments: file order then disagrees with seq."""
    first, second = segments(directory)[:2]
    a, b = first.read_bytes(), second.read_bytes()
    first.write_bytes(b)
    second.write_bytes(a)


def fill(directory: Path, count: int, segment_size: int = 1 << 20) -> dict[bytes, bytes]:
    model = {}
    with Engine.open(directory, segment_size=segment_size) as db:
        for i in range(count):
            key, value = b"key%02d" % (i % 7), b"value-%d" % i
            db.put(key, value)
            model[key] = value
    return model


def test_torn_tail_at_every_offset_reopens_and_keeps_new_writes(tmp_path: Path) -> None:
    """Cut the newest segment at every byte of its last three records."""
    source = tmp_path / "source"
    fill(source, 20)
    (segment,) = segments(source)
    data = segment.read_bytes()
    # Each record here is 29 + 5 + ~8 bytes; the last three span the last ~130 bytes.
    record_ends = _record_ends(source)
    assert record_ends[-1] == len(data)
    for cut in range(record_ends[-4], len(data)):
        store = tmp_path / f"cut{cut}"
        store.mkdir()
        (store / segment.name).write_bytes(data[:cut])
        survivors = sum(1 for end in record_ends if end <= cut)
        with Engine.open(store) as db:
            assert db.stats()["recovery"]["records"] == survivors
            # Zero bytes at the very end are indistinguishable from reserved space.
            torn = data[record_ends[survivors - 1] : cut].rstrip(b"\0")
            assert db.stats()["recovery"]["truncated_bytes"] == len(torn)
            db.put(b"after", b"crash")
        with Engine.open(store) as db:
            assert db.get(b"after") == b"crash"
            assert db.stats()["recovery"]["truncated_bytes"] == 0


class _StopAtDamage:
    """A reader ``Reporter`` that ends the segment at the first damage."""

    def damaged(self, damage: DamagedRegion) -> bool:
        return False

    def incomplete_batch(
        self, members: list[ScannedRecord], marker: ScannedRecord | None, why: str
    ) -> None:
        pass


def _record_ends(directory: Path) -> list[int]:
    (segment,) = segments(directory)
    reader = SegmentReader(segment.read_bytes(), _StopAtDamage(), newest=True)
    return [offset + size for offset, size, *_ in reader]


@pytest.mark.parametrize("filler", [b"\x00", b"\xa5"])
def test_garbage_and_zero_tails_are_cut_before_appending(tmp_path: Path, filler: bytes) -> None:
    model = fill(tmp_path, 10)
    (segment,) = segments(tmp_path)
    with open(segment, "ab") as f:
        f.write(filler * 300)
    with Engine.open(tmp_path) as db:
        assert dict(db.scan()) == model
        expected = 0 if filler == b"\x00" else 300
        assert db.stats()["recovery"]["truncated_bytes"] == expected
        db.put(b"new", b"v")
    with Engine.open(tmp_path) as db:
        assert db.get(b"new") == b"v"
        assert dict(db.scan()) == {**model, b"new": b"v"}


def _damage_first_segment(directory: Path) -> None:
    first = segments(directory)[0]
    with open(first, "r+b") as f:
        f.seek(FILE_HEADER_SIZE + 40)
        f.write(b"\xde\xad")


def test_damage_in_a_sealed_segment_is_reported_not_hidden(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_size=400)
    assert len(segments(tmp_path)) > 2
    _damage_first_segment(tmp_path)
    with pytest.raises(CorruptionError, match=r"0000000001\.seg"):
        Engine.open(tmp_path, segment_size=400)
    with pytest.raises(CorruptionError):
        Engine.open(tmp_path, segment_size=400, recovery="absolute_consistency")


def test_skip_any_corrupted_keeps_everything_else(tmp_path: Path) -> None:
    model = fill(tmp_path, 60, segment_size=400)
    _damage_first_segment(tmp_path)
    with Engine.open(tmp_path, segment_size=400, recovery="skip_any_corrupted") as db:
        report = db.stats()["recovery"]
        assert report["skipped_bytes"] > 0 and report["damage"]
        recovered = dict(db.scan())
    # The damaged records were overwritten later (7 keys rewritten 60 times).
    assert recovered == model


def test_point_in_time_stops_at_the_damage(tmp_path: Path) -> None:
    fill(tmp_path, 60, segment_size=400)
    _damage_first_segment(tmp_path)
    later = len(segments(tmp_path)) - 1
    with Engine.open(tmp_path, segment_size=400, recovery="point_in_time") as db:
        report = db.stats()["recovery"]
        assert len(report["quarantined_segments"]) == later
        before = dict(db.scan())
        db.put(b"new", b"v")
    quarantined = [p for p in os.listdir(tmp_path) if p.endswith(".quarantined")]
    assert len(quarantined) == later
    with Engine.open(tmp_path, segment_size=400) as db:
        assert dict(db.scan()) == {**before, b"new": b"v"}


def test_absolute_consistency_refuses_a_torn_tail(tmp_path: Path) -> None:
    fill(tmp_path, 5)
    (segment,) = segments(tmp_path)
    with open(segment, "ab") as f:
        f.write(b"\x01\x02\x03")
    with pytest.raises(CorruptionError, match="torn tail"):
        Engine.open(tmp_path, recovery="absolute_consistency")
    with Engine.open(tmp_path) as db:
        assert db.stats()["recovery"]["truncated_bytes"] == 3


def test_newer_sequence_wins_whatever_the_file_order(tmp_path: Path) -> None:
    """Rename segments so file order disagrees with sequence order: seq decides."""
    with Engine.open(tmp_path, segment_size=100) as db:
        db.put(b"k", b"old" * 20)
        db.put(b"k", b"new" * 20)
    swap_first_two_segments(tmp_path)
    with Engine.open(tmp_path, segment_size=100) as db:
        assert db.get(b"k") == b"new" * 20


def test_a_batch_in_a_segment_moved_after_a_newer_one_does_not_win(tmp_path: Path) -> None:
    """The fast, in-order replay notices the disorder and replays by sequence instead."""
    with Engine.open(tmp_path, segment_size=150) as db:
        with db.batch() as batch:
            batch.put(b"k", b"old" * 20)
            batch.put(b"j", b"old")
        db.put(b"k", b"new" * 20)
    swap_first_two_segments(tmp_path)
    with Engine.open(tmp_path, segment_size=150) as db:
        assert db.get(b"k") == b"new" * 20
        assert db.get(b"j") == b"old"


def test_replaying_again_by_sequence_still_cuts_the_torn_tail_once(tmp_path: Path) -> None:
    """The out-of-order retry starts from untouched files and reports the damage once."""
    with Engine.open(tmp_path, segment_size=100) as db:
        db.put(b"k", b"old" * 20)
        db.put(b"k", b"new" * 20)
        db.put(b"z", b"last" * 10)
    swap_first_two_segments(tmp_path)
    with open(segments(tmp_path)[-1], "ab") as f:
        f.write(b"\x01\x02\x03")
    with Engine.open(tmp_path, segment_size=100) as db:
        assert db.get(b"k") == b"new" * 20 and db.get(b"z") == b"last" * 10
        assert db.stats()["recovery"]["truncated_bytes"] == 3
    with Engine.open(tmp_path, segment_size=100) as db:
        assert db.stats()["recovery"]["truncated_bytes"] == 0


def test_torn_batch_is_dropped_whole() -> None:
    fs = MemoryFileSystem()
    with Engine.open("/s", fs=fs) as db:
        db.put(b"a", b"before")
        with db.batch() as batch:
            batch.put(b"a", b"batched")
            batch.put(b"b", b"batched")
            batch.delete(b"c")
    path = "/s/0000000001.seg"
    data = fs.read_file(path)
    # Every cut that leaves at least the batch's first record whole, and not its commit.
    first_member_end = data.index(b"batched") + len(b"batched")
    for cut in range(len(data) - 1, first_member_end - 1, -1):
        crashed = MemoryFileSystem()
        crashed.makedirs("/s")
        crashed.open(path, create=True).write(data[:cut])
        with Engine.open("/s", fs=crashed) as db:
            assert dict(db.scan()) == {b"a": b"before"}
            assert db.stats()["recovery"]["incomplete_batches"] == 1
            db.put(b"z", b"after")
        with Engine.open("/s", fs=crashed) as db:
            assert dict(db.scan()) == {b"a": b"before", b"z": b"after"}


def test_a_torn_segment_header_is_rebuilt() -> None:
    fs = MemoryFileSystem()
    with Engine.open("/s", fs=fs, segment_size=100) as db:
        db.put(b"k", b"v" * 80)
    fs.open("/s/0000000009.seg", create=True).write(b"SEG")
    with Engine.open("/s", fs=fs, segment_size=100) as db:
        assert db.get(b"k") == b"v" * 80
        db.put(b"k2", b"w")
    with Engine.open("/s", fs=fs, segment_size=100) as db:
        assert db.get(b"k2") == b"w"
