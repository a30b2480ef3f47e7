"""The one record reader: damage classes, batch grouping, and the fast replay it feeds."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.format import (
    BATCH_COUNT,
    FILE_HEADER_SIZE,
    NO_EXPIRY,
    FileKind,
    RecordType,
    encode_file_header,
    encode_record,
)
from engine.reader import (
    CORRUPT,
    CORRUPT_TAIL,
    SECTOR,
    TORN_TAIL,
    UNUSED,
    UNWRITTEN_GAP,
    ZERO_TAIL,
    DamagedRegion,
    ScannedRecord,
    SegmentReader,
    classify,
)
from engine.recovery import RecoveredState, recover
from engine.segment import segment_name
from engine.testing import MemoryFileSystem

HEADER = encode_file_header(FileKind.SEGMENT)
NOW = 1000.0


class Notes:
    """A reporter that notes everything and reads on (or stops, if told)."""

    def __init__(self, read_on: bool = True) -> None:
        self.read_on = read_on
        self.damage: list[DamagedRegion] = []
        self.incomplete: list[tuple[list[ScannedRecord], str]] = []

    def damaged(self, damage: DamagedRegion) -> bool:
        self.damage.append(damage)
        return self.read_on

    def incomplete_batch(
        self, members: list[ScannedRecord], marker: ScannedRecord | None, why: str
    ) -> None:
        self.incomplete.append((members, why))


def put(seq: int, key: bytes = b"k", value: bytes = b"v" * 100) -> bytes:
    return encode_record(RecordType.PUT, seq, NO_EXPIRY, key, value)


def test_the_reader_names_each_kind_of_damage() -> None:
    records = HEADER + put(1) + put(2)
    garbage = b"\xa5" * 40
    assert classify(records + bytes(900), len(records), newest=True).kind == UNUSED
    assert classify(records + bytes(900), len(records), newest=False).kind == ZERO_TAIL
    assert classify(records + garbage, len(records), newest=True).kind == TORN_TAIL
    assert classify(records + garbage, len(records), newest=False).kind == CORRUPT_TAIL
    middle = records + garbage + put(3)
    assert classify(middle, len(records), newest=True).kind == CORRUPT
    zeroed = records + bytes(SECTOR) + put(3)
    found = classify(zeroed, len(records), newest=True)
    assert found.kind == UNWRITTEN_GAP and found.length == SECTOR
    assert classify(zeroed, len(records), newest=False).kind == CORRUPT


def test_batches_are_yielded_with_their_marker_and_cut_short_ones_reported() -> None:
    members = [
        encode_record(RecordType.BATCH_PUT, 2, NO_EXPIRY, b"a", b"1"),
        encode_record(RecordType.BATCH_DELETE, 3, NO_EXPIRY, b"b"),
    ]
    commit = encode_record(RecordType.BATCH_COMMIT, 4, NO_EXPIRY, b"", BATCH_COUNT.pack(2))
    data = HEADER + put(1) + b"".join(members) + commit + members[0] + put(9)
    notes = Notes()
    reader = SegmentReader(data, notes, newest=True)
    assert [record[3] for record in reader] == [1, 2, 3, 4, 9]
    assert [(len(m), why) for m, why in notes.incomplete] == [(1, "no commit marker follows")]
    assert reader.end == len(data)


def test_a_batch_left_open_at_the_end_is_cut_where_it_began() -> None:
    member = encode_record(RecordType.BATCH_PUT, 2, NO_EXPIRY, b"a", b"1")
    data = HEADER + put(1) + member + b"\xa5" * 10
    notes = Notes(read_on=False)
    reader = SegmentReader(data, notes, newest=True)
    assert [record[3] for record in reader] == [1]
    assert reader.end == FILE_HEADER_SIZE + len(put(1))
    assert [d.kind for d in notes.damage] == [TORN_TAIL] and len(notes.incomplete) == 1


# -- the fused fast replay builds the state the general path builds ------------------

KEYS = st.sampled_from([b"a", b"b", b"c", b"d"])
EXPIRIES = st.sampled_from([NO_EXPIRY, NO_EXPIRY, NOW - 1, NOW + 1])
PLAIN = st.tuples(st.sampled_from(["put", "delete"]), KEYS, EXPIRIES)
BATCH = st.tuples(
    st.just("batch"),
    st.lists(st.tuples(st.booleans(), KEYS, EXPIRIES), min_size=1, max_size=3),
    st.sampled_from(["commit", "commit", "wrong-count", "no-marker"]),
)
SEGMENTS = st.lists(st.lists(st.one_of(PLAIN, PLAIN, BATCH), max_size=12), min_size=1, max_size=3)
TAILS = st.sampled_from([b"", bytes(700), b"\xa5" * 30, b"\xa5" * 20 + bytes(SECTOR)])


def write_log(segments: list[list[tuple[object, ...]]], tail: bytes) -> MemoryFileSystem:
    """Segments of the generated operations, sequence numbers rising; ``tail`` after the last."""
    fs = MemoryFileSystem()
    fs.makedirs("/s")
    seq = 0
    for number, ops in enumerate(segments, start=1):
        parts = [HEADER]
        for op in ops:
            if op[0] == "batch":
                _kind, members, ending = op
                assert isinstance(members, list) and isinstance(ending, str)
                for is_put, key, expires in members:
                    seq += 1
                    kind = RecordType.BATCH_PUT if is_put else RecordType.BATCH_DELETE
                    value = b"v%d" % seq if is_put else b""
                    parts.append(encode_record(kind, seq, expires if is_put else 0.0, key, value))
                if ending != "no-marker":
                    seq += 1
                    count = len(members) + (ending == "wrong-count")
                    marker = encode_record(
                        RecordType.BATCH_COMMIT, seq, NO_EXPIRY, b"", BATCH_COUNT.pack(count)
                    )
                    parts.append(marker)
            else:
                kind_name, key, expires = op
                assert isinstance(key, bytes) and isinstance(expires, float)
                seq += 1
                if kind_name == "put":
                    parts.append(encode_record(RecordType.PUT, seq, expires, key, b"v%d" % seq))
                else:
                    parts.append(encode_record(RecordType.DELETE, seq, NO_EXPIRY, key))
        if number == len(segments):
            parts.append(tail)
        handle = fs.open("/s/" + segment_name(number), create=True)
        handle.write(b"".join(parts))
        handle.close()
    return fs


def replayed(fs: MemoryFileSystem, ids: list[int], *, fast: bool) -> tuple[object, ...]:
    state: RecoveredState = recover(
        fs, "/s", ids, mode="tolerate_corrupted_tail", now=NOW, fast=fast
    )
    report = state.report
    return (
        dict(state.index.locations),
        state.expiry,
        state.dead_bytes,
        state.segment_sizes,
        state.max_seq,
        (report.records, report.truncated_bytes, report.incomplete_batches, report.damage),
    )


@settings(max_examples=300, deadline=None)
@given(SEGMENTS, TAILS)
def test_the_fast_replay_builds_the_same_state_as_the_general_path(
    segments: list[list[tuple[object, ...]]], tail: bytes
) -> None:
    ids = list(range(1, len(segments) + 1))
    fast = replayed(write_log(segments, tail), ids, fast=True)
    general = replayed(write_log(segments, tail), ids, fast=False)
    assert fast == general
