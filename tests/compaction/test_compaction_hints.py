"""Hint files: the index built from hints equals the one a full scan builds, damaged or not."""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable

import pytest
from compaction_helpers import DIRECTORY, Clock, compact_segments, contents, open_store, sealed
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.errors import CorruptionError
from engine.format import NO_EXPIRY, RecordType
from engine.hints import Hint, HintBuilder, decode_hint, hint_name
from engine.index import KeyIndex
from engine.manifest import open_manifest
from engine.recovery import recover
from engine.segment import list_segments, parse_compacted_name
from engine.testing import MemoryFileSystem

Summary = tuple[object, ...]


def compacted_store(clock: Clock) -> MemoryFileSystem:
    """A closed store with several compacted segments holding puts, expiries and tombstones."""
    fs = MemoryFileSystem()
    db = open_store(fs, clock, segment_size=1024)
    rng = random.Random(4)
    keys = [b"key%02d" % i for i in range(60)]
    for n in range(600):
        key = rng.choice(keys)
        roll = rng.random()
        if roll < 0.15:
            db.delete(key)
        elif roll < 0.3:
            db.put(key, b"expiring %d" % n, ttl=rng.choice([5, 500]))
        elif roll < 0.35:
            with db.batch() as batch:
                batch.put(key, b"batched %d" % n)
                batch.delete(rng.choice(keys))
        else:
            db.put(key, b"value %d" % n * rng.randint(1, 4))
        if n == 300:
            clock.advance(10)
            db.compact()
        if n % 150 == 149:
            # Newest first, so that older values outside keep some tombstones alive.
            compact_segments(db, [n for n in sealed(db) if n.endswith(".seg")][-2:])
    db.close()
    return fs


def summary(fs: MemoryFileSystem, now: float) -> Summary:
    """Everything recovery rebuilds from a copy of ``fs``."""
    copy = fs.after_process_crash()
    compacted = sorted(open_manifest(copy, DIRECTORY).segments)
    state = recover(
        copy,
        DIRECTORY,
        list_segments(copy, DIRECTORY),
        compacted=compacted,
        mode="tolerate_corrupted_tail",
        now=now,
    )
    return (
        state.index.locations,
        sorted(state.index.range()),
        state.expiry,
        state.dead_bytes,
        state.segment_sizes,
        state.max_seq,
        state.report.records,
    )


def hints_of(fs: MemoryFileSystem) -> list[str]:
    return sorted(n for n in fs.listdir(DIRECTORY) if n.endswith(".hint"))


@pytest.fixture(scope="module")
def store() -> tuple[MemoryFileSystem, float]:
    clock = Clock()
    fs = compacted_store(clock)
    assert len(hints_of(fs)) >= 3
    return fs, clock.now


def without_hints(fs: MemoryFileSystem) -> MemoryFileSystem:
    copy = fs.after_process_crash()
    for name in hints_of(copy):
        copy.unlink(f"{DIRECTORY}/{name}")
    return copy


def test_the_store_has_tombstones_and_expiring_records_in_its_hints(
    store: tuple[MemoryFileSystem, float],
) -> None:
    fs, _now = store
    hints = [decode_hint(fs.read_file(f"{DIRECTORY}/{n}"), n) for n in hints_of(fs)]
    assert any(h.deletes for h in hints)
    assert any(h.expiring for h in hints)


def test_index_from_hints_equals_index_from_a_full_scan(
    store: tuple[MemoryFileSystem, float],
) -> None:
    fs, now = store
    assert summary(fs, now) == summary(without_hints(fs), now)
    assert summary(fs, now + 1000) == summary(without_hints(fs), now + 1000)


def test_reopen_reads_hints_not_compacted_segments(
    store: tuple[MemoryFileSystem, float],
) -> None:
    fs, now = store
    copy = fs.after_process_crash()
    reads: list[str] = []
    read_file = copy.read_file

    def counting(path: str) -> bytes:
        reads.append(path)
        return read_file(path)

    copy.read_file = counting  # type: ignore[method-assign]
    clock = Clock(now)
    with open_store(copy, clock, segment_size=1024) as db:
        scanned = contents(db)
    assert not [p for p in reads if p.endswith(".cseg")]
    with open_store(without_hints(fs), clock, segment_size=1024) as db:
        assert contents(db) == scanned


def damaged(data: bytes) -> list[tuple[str, bytes]]:
    """Truncations and single flipped bytes across a hint's header, columns, keys and CRC."""
    cuts = sorted({0, 1, 15, 16, 40, 60, len(data) // 2, len(data) - 4, len(data) - 1})
    variants = [(f"cut at {cut}", data[:cut]) for cut in cuts]
    for position in sorted({0, 9, 17, 40, 56, 70, len(data) // 2, len(data) - 6, len(data) - 1}):
        flipped = bytearray(data)
        flipped[position] ^= 0x40
        variants.append((f"byte {position} flipped", bytes(flipped)))
    variants.append(("padded", data + b"\0"))
    return variants


def test_a_damaged_hint_falls_back_to_the_same_index(
    store: tuple[MemoryFileSystem, float], caplog: pytest.LogCaptureFixture
) -> None:
    fs, now = store
    expected = summary(fs, now)
    for name in hints_of(fs):
        data = fs.read_file(f"{DIRECTORY}/{name}")
        for what, variant in damaged(data):
            copy = fs.after_process_crash()
            copy.files[f"{DIRECTORY}/{name}"].data[:] = variant
            caplog.clear()
            assert summary(copy, now) == expected, (name, what)
            assert any(name in r.getMessage() for r in caplog.records), (name, what)


def test_a_missing_or_swapped_hint_falls_back_to_the_same_index(
    store: tuple[MemoryFileSystem, float],
) -> None:
    fs, now = store
    expected = summary(fs, now)
    first, second, *_ = hints_of(fs)
    copy = fs.after_process_crash()
    copy.unlink(f"{DIRECTORY}/{first}")
    assert summary(copy, now) == expected
    copy = fs.after_process_crash()
    copy.files[f"{DIRECTORY}/{first}"].data[:] = fs.read_file(f"{DIRECTORY}/{second}")
    assert summary(copy, now) == expected


def test_a_hint_whose_segment_is_damaged_is_not_trusted(
    store: tuple[MemoryFileSystem, float],
) -> None:
    fs, now = store
    name = next(n for n in fs.listdir(DIRECTORY) if parse_compacted_name(n))
    copy = fs.after_process_crash()
    copy.files[f"{DIRECTORY}/{name}"].data[0] ^= 1
    with pytest.raises(CorruptionError, match=name):
        summary(copy, now)


def builder_of(entries: list[tuple[bytes, int, int, int, float]]) -> HintBuilder:
    builder = HintBuilder()
    for key, seq, size, rtype, expires_at in entries:
        builder.add(key, seq, size, rtype, expires_at)
    return builder


entries = st.lists(
    st.tuples(
        st.binary(min_size=1, max_size=12),
        st.integers(1, 2**64 - 1),
        st.integers(29 + 12, 2**20),
        st.sampled_from([int(RecordType.PUT), int(RecordType.DELETE)]),
        st.sampled_from([NO_EXPIRY, 1.5, 1e12]),
    ),
    max_size=20,
)


@given(entries)
@settings(max_examples=150, deadline=None)
def test_hints_round_trip(items: list[tuple[bytes, int, int, int, float]]) -> None:
    builder = builder_of([(k, s, max(size, 29 + len(k)), t, e) for k, s, size, t, e in items])
    hint = decode_hint(builder.encode(), "x.hint")
    assert isinstance(hint, Hint)
    got = list(hint.records())
    assert [(r[5], r[3], r[1], r[2]) for r in got] == [
        (k, s, max(size, 29 + len(k)), t) for k, s, size, t, _e in items
    ]
    assert [r[4] for r in got] == [NO_EXPIRY if t == RecordType.DELETE else e for *_, t, e in items]


def _decodes_or_refuses(data: bytes) -> None:
    with contextlib.suppress(CorruptionError):
        decode_hint(data, "x.hint")


@given(st.binary(max_size=300))
@settings(max_examples=300, deadline=None)
def test_arbitrary_bytes_are_refused_as_corruption(data: bytes) -> None:
    _decodes_or_refuses(data)


@given(entries, st.data())
@settings(max_examples=200, deadline=None)
def test_mutated_hints_decode_or_are_refused(
    items: list[tuple[bytes, int, int, int, float]], data: st.DataObject
) -> None:
    encoded = bytearray(
        builder_of([(k, s, 29 + len(k), t, e) for k, s, _z, t, e in items]).encode()
    )
    mutate: Callable[[bytearray], None] = data.draw(
        st.sampled_from(
            [
                lambda b: b.__setitem__(data.draw(st.integers(0, len(b) - 1)), 0xFF),
                lambda b: b.__delitem__(slice(data.draw(st.integers(0, len(b))), None)),
                lambda b: b.extend(data.draw(st.binary(max_size=20))),
            ]
        )
    )
    mutate(encoded)
    _decodes_or_refuses(bytes(encoded))


def test_hint_names_follow_their_segment() -> None:
    segment_id = parse_compacted_name("0000000042.cseg")
    assert segment_id is not None and hint_name(segment_id) == "0000000042.hint"


def test_keys_taken_in_bulk_join_the_sorted_order_at_the_next_ordered_read() -> None:
    index = KeyIndex.over({b"z": 2, b"a": 3, b"q": 4})
    index.put(b"m", 1)
    index.remove(b"q")
    index.put(b"q", 5)
    index.remove(b"a")
    assert index.locations == {b"m": 1, b"z": 2, b"q": 5}
    assert list(index.range()) == [b"m", b"q", b"z"]
    assert list(index.range(reverse=True, prefix=b"q")) == [b"q"]
