"""The record codec: framing, CRC coverage, and refusal of every kind of garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import CorruptionError
from engine.format import (
    FILE_HEADER_SIZE,
    MAX_HEADER_SIZE,
    MIN_HEADER_SIZE,
    FileKind,
    RecordType,
    check_file_header,
    decode_record_at,
    decode_value,
    encode_file_header,
    encode_record,
    parse_record,
)

VERSIONS = pytest.mark.parametrize("version", [1, 2])


@VERSIONS
def test_round_trip(version: int) -> None:
    data = encode_record(RecordType.PUT, 7, 123.5, b"key", b"value", version)
    decoded = decode_record_at(data, 0)
    assert decoded is not None
    record, size = decoded
    # Version 2: CRC, tag, u32 seq, u8 key length, u8 value length, and the expiry, as set.
    assert size == len(data) == (MAX_HEADER_SIZE if version == 1 else 19) + 3 + 5
    assert (record.type, record.seq, record.expires_at, record.key, record.value) == (
        RecordType.PUT,
        7,
        123.5,
        b"key",
        b"value",
    )
    assert decode_value(data, b"key", "here") == b"value"


@pytest.mark.parametrize(
    ("seq", "key_len", "value_len", "expires_at", "header"),
    [
        (1, 3, 5, 0.0, MIN_HEADER_SIZE),  # every field narrow, no expiry
        (2**32, 3, 5, 0.0, MIN_HEADER_SIZE + 4),  # the sequence number no longer fits u32
        (1, 256, 5, 0.0, MIN_HEADER_SIZE + 3),  # the key length no longer fits u8
        (1, 3, 256, 0.0, MIN_HEADER_SIZE + 1),  # the value length takes u16
        (1, 3, 65536, 0.0, MIN_HEADER_SIZE + 3),  # and then u32
        (2**40, 300, 70000, 9.5, MIN_HEADER_SIZE + 4 + 3 + 3 + 8),
    ],
)
def test_version_2_fields_are_as_narrow_as_they_fit(
    seq: int, key_len: int, value_len: int, expires_at: float, header: int
) -> None:
    key, value = b"k" * key_len, b"v" * value_len
    data = encode_record(RecordType.PUT, seq, expires_at, key, value)
    assert len(data) == header + key_len + value_len
    assert parse_record(data, 0) == (RecordType.PUT, seq, expires_at, header, key_len, len(data))
    assert decode_value(data, key, "here") == value


def test_version_2_reads_fields_wider_than_they_need() -> None:
    """A writer may choose wide fields (the tag says which): they read the same."""
    from crc32c import crc32c

    # PUT, wide sequence number, wide key length, u32 value length: every field at its widest.
    body = struct.pack("<BQII", 1 | 0x10 | 0x20 | 0xC0, 7, 1, 2) + b"kvv"
    record = struct.pack("<I", crc32c(body)) + body
    assert parse_record(record, 0) == (RecordType.PUT, 7, 0.0, 21, 1, len(record))
    assert decode_value(record, b"k", "wide") == b"vv"


def test_zero_bytes_never_parse() -> None:
    for length in range(0, 3 * MAX_HEADER_SIZE):
        assert parse_record(bytes(length), 0) is None


def test_type_zero_is_invalid_even_with_a_valid_crc() -> None:
    from crc32c import crc32c

    for body in (
        struct.pack("<BQdII", 0, 1, 0.0, 1, 1) + b"kv",
        struct.pack("<BIBB", 0x40, 1, 1, 1) + b"kv",
    ):
        assert parse_record(struct.pack("<I", crc32c(body)) + body, 0) is None


@VERSIONS
@given(st.binary(min_size=1, max_size=20), st.binary(max_size=40), st.data())
def test_any_flipped_bit_is_detected(
    version: int, key: bytes, value: bytes, data: st.DataObject
) -> None:
    record = bytearray(encode_record(RecordType.PUT, 1, 0.0, key, value, version))
    bit = data.draw(st.integers(0, len(record) * 8 - 1))
    record[bit // 8] ^= 1 << (bit % 8)
    assert parse_record(bytes(record), 0) is None
    with pytest.raises(CorruptionError):
        decode_value(bytes(record), key, "flipped")


@given(st.binary(max_size=200), st.integers(-5, 250))
def test_garbage_never_raises(garbage: bytes, offset: int) -> None:
    parse_record(garbage, offset)
    decode_record_at(garbage, offset)


def test_length_beyond_the_data_is_refused_before_slicing() -> None:
    for version, value_len_at, width in ((1, 25, "<I"), (2, 10, "<B")):
        record = encode_record(RecordType.PUT, 1, 0.0, b"k", b"v" * 10, version)
        assert parse_record(record[:-1], 0) is None
        huge = bytearray(record)
        struct.pack_into(width, huge, value_len_at, 2 ** (struct.calcsize(width) * 8) - 1)
        assert parse_record(bytes(huge), 0) is None


def test_decode_value_refuses_another_key() -> None:
    record = encode_record(RecordType.PUT, 1, 0.0, b"a", b"v")
    with pytest.raises(CorruptionError, match="expected key"):
        decode_value(record, b"b", "elsewhere")


def test_file_header() -> None:
    header = encode_file_header(FileKind.SEGMENT)
    assert len(header) == FILE_HEADER_SIZE
    check_file_header(header, FileKind.SEGMENT, "seg")
    with pytest.raises(CorruptionError, match="kind"):
        check_file_header(header, FileKind.HINT, "seg")
    with pytest.raises(CorruptionError, match="magic"):
        check_file_header(b"X" + header[1:], FileKind.SEGMENT, "seg")
    with pytest.raises(CorruptionError, match="short"):
        check_file_header(header[:5], FileKind.SEGMENT, "seg")


def test_segments_of_both_versions_are_read_and_no_other() -> None:
    assert check_file_header(encode_file_header(FileKind.SEGMENT), FileKind.SEGMENT, "s") == 2
    assert check_file_header(encode_file_header(FileKind.SEGMENT, 1), FileKind.SEGMENT, "s") == 1
    with pytest.raises(CorruptionError, match="unsupported format version 3"):
        check_file_header(encode_file_header(FileKind.SEGMENT, 3), FileKind.SEGMENT, "s")
    # Hint files did not change in version 2.
    assert check_file_header(encode_file_header(FileKind.HINT), FileKind.HINT, "h") == 1
    with pytest.raises(CorruptionError, match="unsupported format version 2"):
        check_file_header(encode_file_header(FileKind.HINT, 2), FileKind.HINT, "h")
