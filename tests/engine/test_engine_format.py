"""The record codec: framing, CRC coverage, and refusal of every kind of garbage."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import CorruptionError
from engine.format import (
    FILE_HEADER_SIZE,
    HEADER_SIZE,
    FileKind,
    RecordType,
    check_file_header,
    decode_record_at,
    decode_value,
    encode_file_header,
    encode_record,
    parse_record,
)


def test_round_trip() -> None:
    data = encode_record(RecordType.PUT, 7, 123.5, b"key", b"value")
    decoded = decode_record_at(data, 0)
    assert decoded is not None
    record, size = decoded
    assert size == len(data) == HEADER_SIZE + 3 + 5
    assert (record.type, record.seq, record.expires_at, record.key, record.value) == (
        RecordType.PUT,
        7,
        123.5,
        b"key",
        b"value",
    )
    assert decode_value(data, b"key", "here") == b"value"


def test_zero_bytes_never_parse() -> None:
    for length in range(0, 3 * HEADER_SIZE):
        assert parse_record(bytes(length), 0) is None


def test_type_zero_is_invalid_even_with_a_valid_crc() -> None:
    from crc32c import crc32c

    body = struct.pack("<BQdII", 0, 1, 0.0, 1, 1) + b"kv"
    assert parse_record(struct.pack("<I", crc32c(body)) + body, 0) is None


@given(st.binary(min_size=1, max_size=20), st.binary(max_size=40), st.data())
def test_any_flipped_bit_is_detected(key: bytes, value: bytes, data: st.DataObject) -> None:
    record = bytearray(encode_record(RecordType.PUT, 1, 0.0, key, value))
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
    record = encode_record(RecordType.PUT, 1, 0.0, b"k", b"v" * 10)
    assert parse_record(record[:-1], 0) is None
    huge = bytearray(record)
    struct.pack_into("<I", huge, HEADER_SIZE - 4, 2**32 - 1)
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
