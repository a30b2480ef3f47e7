"""Stores an older seglog wrote (format version 1) keep opening, reading and writing.

Each test builds a version-1 store byte by byte, as the old code laid it out
(docs/FORMAT.md), then opens it with today's engine: the old records read,
new records go only into version-2 files, and compaction rewrites the old
records in version 2.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import Engine
from engine.format import (
    BATCH_COMMIT,
    BATCH_COUNT,
    BATCH_PUT,
    DELETE,
    FILE_HEADER_SIZE,
    PUT,
    VALUE_LEN_U8,
    VERSION,
    WIDE_SEQ,
    FileKind,
    check_file_header,
    encode_file_header,
    encode_record,
)
from engine.fs import OSFileSystem
from engine.reader import record_at
from engine.segment import list_segments, parse_compacted_name, segment_name

#: The store's clock, so that the old expiring record is still live when reopened.
NOW = 1_000_000.0


def _old_store(path: Path, *, reserve: int = 0) -> dict[bytes, bytes]:
    """A version-1 store of one segment: puts, an overwrite, an expiring put, a delete, a batch.

    ``reserve`` zero bytes follow the records, as an old owner's active segment had.
    """
    records = [
        encode_record(PUT, 1, 0.0, b"plain", b"old value", version=1),
        encode_record(PUT, 2, 0.0, b"overwritten", b"first", version=1),
        encode_record(PUT, 3, 0.0, b"overwritten", b"second", version=1),
        encode_record(PUT, 4, NOW + 3600, b"expiring", b"for an hour", version=1),
        encode_record(PUT, 5, 0.0, b"deleted", b"gone", version=1),
        encode_record(DELETE, 6, 0.0, b"deleted", version=1),
        encode_record(BATCH_PUT, 7, 0.0, b"batched", b"in a batch", version=1),
        encode_record(BATCH_COMMIT, 8, 0.0, b"", BATCH_COUNT.pack(1), version=1),
        encode_record(PUT, 9, 0.0, b"long value", b"v" * 300, version=1),
    ]
    path.mkdir()
    data = encode_file_header(FileKind.SEGMENT, 1) + b"".join(records) + bytes(reserve)
    (path / segment_name(1)).write_bytes(data)
    return {
        b"plain": b"old value",
        b"overwritten": b"second",
        b"expiring": b"for an hour",
        b"batched": b"in a batch",
        b"long value": b"v" * 300,
    }


def _open(path: Path, **options: object) -> Engine:
    return Engine.open(path, clock=lambda: NOW, auto_compact=False, **options)  # type: ignore[arg-type]


def _records(data: bytes) -> list[tuple[int, int]]:
    """``(offset, tag)`` of each record in a segment's bytes; they must all be valid."""
    found, offset = [], FILE_HEADER_SIZE
    while offset < len(data) and any(data[offset:]):
        record = record_at(data, offset)
        assert record is not None, f"no valid record at offset {offset}"
        found.append((offset, data[offset + 4]))
        offset += record[1]
    return found


def list_segments_of(store: Path) -> list[int]:
    return list_segments(OSFileSystem(), str(store))


def _version(path: Path) -> int:
    return check_file_header(path.read_bytes(), FileKind.SEGMENT, path.name)


@pytest.mark.parametrize("reserve", [0, 4096])
def test_an_old_store_reads_and_new_writes_go_to_a_new_version_2_segment(
    tmp_path: Path, reserve: int
) -> None:
    store = tmp_path / "store"
    model = _old_store(store, reserve=reserve)
    old = (store / segment_name(1)).read_bytes().rstrip(b"\0")
    with _open(store) as db:
        assert dict(db.scan()) == model
        assert db.get_entry(b"expiring") == (b"for an hour", NOW + 3600)
        db.put(b"new", b"value")
        db.delete(b"plain")
        model[b"new"] = b"value"
        del model[b"plain"]
    # The old segment keeps its records (its reserved zeros cut), and only those.
    assert (store / segment_name(1)).read_bytes() == old
    assert _version(store / segment_name(1)) == 1
    assert list_segments_of(store) == [1, 2]
    assert _version(store / segment_name(2)) == VERSION
    assert all(tag >= VALUE_LEN_U8 for _, tag in _records((store / segment_name(2)).read_bytes()))
    with _open(store, recovery="absolute_consistency") as db:
        assert dict(db.scan()) == model


def test_compaction_rewrites_old_records_in_version_2(tmp_path: Path) -> None:
    store = tmp_path / "store"
    model = _old_store(store)
    with _open(store) as db:
        db.put(b"overwritten", b"third")  # something dead, so that compaction has work
        model[b"overwritten"] = b"third"
        db.compact()
        assert dict(db.scan()) == model
    outputs = sorted(p for p in store.iterdir() if parse_compacted_name(p.name) is not None)
    assert outputs and not (store / segment_name(1)).exists()
    tags = [tag for path in outputs for _, tag in _records(path.read_bytes())]
    assert tags and all(tag >= VALUE_LEN_U8 for tag in tags)
    assert all(_version(path) == VERSION for path in outputs)
    with _open(store) as db:
        assert dict(db.scan()) == model
        assert db.get_entry(b"expiring") == (b"for an hour", NOW + 3600)


def test_a_reader_and_a_shared_writer_follow_an_old_store(tmp_path: Path) -> None:
    store = tmp_path / "store"
    model = _old_store(store, reserve=4096)
    with _open(store, shared=True) as writer, _open(store, readonly=True) as reader:
        assert dict(reader.scan()) == model
        writer.put(b"shared", b"write")
        model[b"shared"] = b"write"
        assert reader.get(b"shared") == b"write"
        assert dict(writer.scan()) == model
    # The shared writer did not append to the old segment: it rolled over first.
    assert _version(store / segment_name(2)) == VERSION
    assert all(tag < VALUE_LEN_U8 for _, tag in _records((store / segment_name(1)).read_bytes()))
    with _open(store) as db:
        assert dict(db.scan()) == model


def test_fields_at_every_width_boundary_survive_a_reopen(tmp_path: Path) -> None:
    """Keys and values either side of each width's limit, and sequence numbers past
    2**32 (continued from an old store's last one): put, delete, batch and expiring
    records read back the same before and after a reopen and a compaction."""
    store = tmp_path / "store"
    store.mkdir()
    start = 2**32 - 3
    old = encode_record(PUT, start, 0.0, b"last old", b"value", version=1)
    (store / segment_name(1)).write_bytes(encode_file_header(FileKind.SEGMENT, 1) + old)
    model = {b"last old": b"value"}
    sizes = (0, 1, 255, 256, 65535, 65536)
    with _open(store, max_value_size=1 << 17) as db:
        for size in sizes:
            for key_len in (1, 255, 256, 1000):
                key = bytes([size % 251]) * (key_len - 1) + b"%d" % (key_len % 10)
                db.put(key, b"v" * size)
                model[key] = b"v" * size
        db.put(b"expiring", b"e" * 300, ttl=3600)
        with db.batch() as batch:
            batch.put(b"batched" * 40, b"b" * 70000)
            batch.delete(b"last old")
        model[b"batched" * 40] = b"b" * 70000
        del model[b"last old"]
        assert dict(db.scan()) == {**model, b"expiring": b"e" * 300}
    tags = [tag for _, tag in _records((store / segment_name(2)).read_bytes())]
    assert tags[0] & WIDE_SEQ == 0 and tags[-1] & WIDE_SEQ  # the sequence numbers crossed 2**32
    with _open(store, max_value_size=1 << 17) as db:
        assert dict(db.scan()) == {**model, b"expiring": b"e" * 300}
        assert db.get_entry(b"expiring") == (b"e" * 300, NOW + 3600)
        db.compact()
    with _open(store, max_value_size=1 << 17, recovery="absolute_consistency") as db:
        assert dict(db.scan()) == {**model, b"expiring": b"e" * 300}
