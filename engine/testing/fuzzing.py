"""Byte-level properties for fuzzing: the record decoder, segment recovery, the hint parser.

Each ``check_*`` function takes arbitrary bytes and raises ``AssertionError``
(or whatever escaped the code under test) when a property fails. The same
functions back the Atheris targets in ``fuzz/`` (long runs, coverage-guided)
and the Hypothesis tests in ``tests/crash/`` (CI).

The segment and hint checks are structure-aware: the input bytes are read as a
``Recipe`` of decisions that build a *valid* log or hint, then damage it the
way crashes and media do (cut, zeroed, garbage, bit flips, spliced from
elsewhere) and sometimes re-seal a damaged record or hint with a correct CRC,
so the checks behind the CRC get exercised too.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from typing import Any, Final

from crc32c import crc32c

from engine.engine import Engine
from engine.errors import CorruptionError
from engine.format import (
    BATCH_COUNT,
    FILE_HEADER_SIZE,
    LAYOUTS,
    MIN_HEADER_SIZE,
    TYPE_MASK,
    VALUE_LEN_U8,
    VERSION,
    WIDE_SEQ,
    FileKind,
    RecordType,
    decode_record_at,
    decode_value,
    encode_file_header,
    encode_record,
    parse_record,
)
from engine.recovery import RECOVERY_MODES
from engine.segment import segment_name
from engine.testing.actions import open_engine
from engine.testing.memfs import Inode, MemoryFileSystem

DIRECTORY: Final = "/fuzz"
_KEYS: Final = (b"a", b"b", b"k" * 7, b"\x00", b"\xff\xfe")
#: Record types a re-sealed record may get: every valid one and a few invalid ones.
_TYPES: Final = (0, *(int(t) for t in RecordType), 6, 255)
_SPECIAL_FLOATS: Final = (float("nan"), float("inf"), -1.0, 0.0, 1e300, 5e-324)


class Recipe:
    """Where the structure-aware checks get their decisions.

    ``Recipe(data)`` reads them from fuzzer bytes (once they run out every
    answer is zero); ``engine.testing.strategies.drawn_recipe`` draws them from
    Hypothesis, which then shrinks a failure to the fewest, smallest decisions.
    """

    def __init__(self, data: bytes = b"") -> None:
        self.data = data
        self.position = 0

    def below(self, n: int) -> int:
        """An int in ``[0, n)``."""
        if n <= 1:
            return 0
        value = 0
        for _ in range(3):
            value = value << 8 | self._byte()
        return value % n

    def _byte(self) -> int:
        if self.position >= len(self.data):
            return 0
        self.position += 1
        return self.data[self.position - 1]

    def byte(self) -> int:
        return self.below(256)

    def chance(self, percent: int) -> bool:
        return self.below(100) < percent

    def take(self, n: int) -> bytes:
        return bytes(self.byte() for _ in range(n))


# ------------------------------------------------------------------ decoder


def check_record_decoder(data: bytes) -> None:
    """``parse_record``/``decode_record_at``/``decode_value`` on arbitrary bytes.

    Never an exception but CorruptionError from ``decode_value``; whatever
    parses re-encodes to exactly the bytes it was parsed from.
    """
    for offset in {0, 1, len(data) // 2, max(0, len(data) - MIN_HEADER_SIZE)}:
        parsed = parse_record(data, offset)
        decoded = decode_record_at(data, offset)
        assert (parsed is None) == (decoded is None)
        if parsed is None or decoded is None:
            continue
        rtype, seq, expires_at, head, key_len, size = parsed
        record, decoded_size = decoded
        assert decoded_size == size and offset + size <= len(data)
        assert size == head + key_len + len(record.value)
        assert (record.type, record.seq, len(record.key)) == (rtype, seq, key_len)
        version = 1 if data[offset + 4] < VALUE_LEN_U8 else 2
        again = encode_record(rtype, seq, expires_at, record.key, record.value, version)
        # Version 2 also reads fields wider than they need: those decode alike.
        assert again == data[offset : offset + size] or decode_record_at(again, 0) == (
            record,
            len(again),
        )
        frame = data[offset : offset + size]
        if rtype in (RecordType.PUT, RecordType.BATCH_PUT):
            assert decode_value(frame, record.key, "fuzz") == record.value
        else:
            _expect_corruption(_decoding(frame, record.key))
    _expect_corruption(lambda: decode_value(data, b"k", "fuzz"), allow_success=True)


def _decoding(frame: bytes, key: bytes) -> Callable[[], object]:
    return lambda: decode_value(frame, key, "fuzz")


def _expect_corruption(call: Callable[[], object], *, allow_success: bool = False) -> None:
    try:
        call()
    except CorruptionError:
        return
    assert allow_success, "expected CorruptionError"


# --------------------------------------------------------------- a valid log


def build_log(recipe: Recipe, version: int) -> tuple[list[bytes], dict[bytes, set[bytes]]]:
    """Encoded records of a random valid log in ``version``, and every value carried per key."""
    records: list[bytes] = []
    carried: dict[bytes, set[bytes]] = {}
    seq = 0
    for _ in range(1 + recipe.below(12)):
        key = _KEYS[recipe.below(len(_KEYS))]
        seq += 1
        choice = recipe.below(10)
        value = bytes([recipe.byte()]) * recipe.below(40)
        if choice < 6:
            expiry = 0.0 if recipe.chance(70) else float(1 + recipe.below(3_000_000))
            records.append(encode_record(RecordType.PUT, seq, expiry, key, value, version))
            carried.setdefault(key, set()).add(value)
        elif choice < 8:
            records.append(encode_record(RecordType.DELETE, seq, 0.0, key, b"", version))
            carried.setdefault(key, set()).add(b"")
        else:
            members = []
            for i in range(1 + recipe.below(3)):
                member_key = _KEYS[recipe.below(len(_KEYS))]
                member_value = value + bytes([i])
                members.append(
                    encode_record(RecordType.BATCH_PUT, seq, 0.0, member_key, member_value, version)
                )
                carried.setdefault(member_key, set()).add(member_value)
                seq += 1
            count = BATCH_COUNT.pack(len(members))
            carried.setdefault(b"", set()).add(count)  # a re-sealed commit may become a put
            commit = encode_record(RecordType.BATCH_COMMIT, seq, 0.0, b"", count, version)
            records.append(b"".join(members) + commit)
    return records, carried


def _damage(recipe: Recipe, files: list[bytearray]) -> None:
    """Apply a few crash- and media-like injuries to the files."""
    for _ in range(recipe.below(4)):
        target = files[recipe.below(len(files))]
        if not target:
            continue
        start = recipe.below(len(target) + 1)
        length = recipe.below(64) + 1
        how = recipe.below(7)
        if how == 0:  # cut short
            del target[start:]
        elif how == 1:  # zero-filled
            target[start : start + length] = bytes(len(target[start : start + length]))
        elif how == 2:  # garbage
            target[start : start + length] = recipe.take(len(target[start : start + length]))
        elif how == 3:  # bit flip
            if start < len(target):
                target[start] ^= 1 << recipe.below(8)
        elif how == 4:  # splice bytes from elsewhere (possibly another file)
            source = files[recipe.below(len(files))]
            origin = recipe.below(len(source) + 1)
            target[start : start + length] = source[origin : origin + length]
        elif how == 5:  # size grew, data never arrived
            target.extend(bytes(length))
        else:  # re-seal one record's header field with a valid CRC
            _reseal(recipe, target)


def _reseal(recipe: Recipe, data: bytearray) -> None:
    """Change the type, sequence or expiry of the record at some offset and fix its CRC."""
    offset = FILE_HEADER_SIZE
    offsets = []
    while (parsed := parse_record(bytes(data), offset)) is not None:
        offsets.append(offset)
        offset += parsed[5]
    if not offsets:
        return
    at = offsets[recipe.below(len(offsets))]
    layout = LAYOUTS[data[at + 4]]
    assert layout is not None
    unpack, head, expiry_at = layout
    _crc, tag, _seq, key_len, value_len = unpack(data, at)
    field = recipe.below(3)
    version_1 = tag < VALUE_LEN_U8
    if field == 0:
        new_type = _TYPES[recipe.below(len(_TYPES))]
        data[at + 4] = new_type if version_1 else tag & ~TYPE_MASK | new_type & TYPE_MASK
    elif field == 1 or not expiry_at:
        seq_format = "<Q" if version_1 or tag & WIDE_SEQ else "<I"
        struct.pack_into(seq_format, data, at + 5, recipe.below(1 << 24))
    else:
        special = _SPECIAL_FLOATS[recipe.below(len(_SPECIAL_FLOATS))]
        struct.pack_into("<d", data, at + expiry_at, special)
    end = at + head + key_len + value_len
    if end <= len(data):
        struct.pack_into("<I", data, at, crc32c(bytes(data[at + 4 : end])))


def segment_files(recipe: Recipe) -> tuple[dict[str, bytes], dict[bytes, set[bytes]]]:
    """A damaged store directory built from ``recipe``: file name -> bytes, and carried values."""
    version = (VERSION, 1)[recipe.below(2)]
    records, carried = build_log(recipe, version)
    count = 1 + recipe.below(3)
    cuts = sorted(recipe.below(len(records) + 1) for _ in range(count - 1))
    bounds = [0, *cuts, len(records)]
    header = encode_file_header(FileKind.SEGMENT, version)
    files = [bytearray(header + b"".join(records[a:b])) for a, b in itertools.pairwise(bounds)]
    _damage(recipe, files)
    return {segment_name(i + 1): bytes(f) for i, f in enumerate(files)}, carried


def check_segment_recovery(recipe: Recipe) -> None:
    """Open a damaged store in every recovery mode: CorruptionError or a sound store.

    Sound: every value shown was carried by some record for its key, the store
    reopens to the same contents (recovery is idempotent), and takes a write.
    """
    files, carried = segment_files(recipe)
    for mode in RECOVERY_MODES:
        fs = MemoryFileSystem()
        fs.makedirs(DIRECTORY)
        for name, content in files.items():
            fs.open(f"{DIRECTORY}/{name}", create=True).write(content)
        try:
            db = Engine.open(DIRECTORY, fs=fs, recovery=mode, sync="none", clock=lambda: 1e6)
        except CorruptionError:
            continue
        contents = dict(db.scan())
        for key, value in contents.items():
            assert value in carried.get(key, set()), f"{mode}: {key!r} = {value!r} never written"
        assert len(db) == len(contents)
        db.put(b"after", b"recovery")
        db.close()
        again = Engine.open(DIRECTORY, fs=fs, recovery=mode, sync="none", clock=lambda: 1e6)
        assert dict(again.scan()) == {**contents, b"after": b"recovery"}, f"{mode}: not idempotent"
        again.close()


# --------------------------------------------------------------------- hints


def check_hint_parser(recipe: Recipe) -> None:
    """``decode_hint`` on a hint built from ``recipe`` and then damaged.

    The undamaged hint decodes to what was built. Damaged, it raises
    CorruptionError and nothing else; unless it was re-sealed with a valid CRC
    (which no crash does), damage is always caught.
    """
    from engine.hints import HintBuilder, decode_hint

    builder = HintBuilder()
    built = []
    for i in range(recipe.below(10)):
        key = _KEYS[recipe.below(len(_KEYS))]
        kind = recipe.below(3)
        rtype = int(RecordType.DELETE if kind == 0 else RecordType.PUT)
        expires = float(1 + recipe.below(1000)) if kind == 2 else 0.0
        size = MIN_HEADER_SIZE + len(key) + recipe.below(50)
        builder.add(key, i + 1, size, rtype, expires)
        built.append((key, i + 1, size, rtype == RecordType.DELETE, expires))
    pristine = builder.encode()
    hint = decode_hint(pristine, "fuzz.hint")
    deletes = set(hint.deletes)
    decoded = [
        (key, seq, size, i in deletes, hint.expiring.get(i, 0.0))
        for i, (key, seq, size) in enumerate(zip(hint.keys, hint.seqs, hint.sizes, strict=True))
    ]
    assert decoded == built, "a hint must decode to what was built"
    damaged = bytearray(pristine)
    _damage(recipe, [damaged])
    resealed = recipe.chance(50) and len(damaged) >= 4
    if resealed:
        damaged[-4:] = struct.pack("<I", crc32c(bytes(damaged[:-4])))
    try:
        decode_hint(bytes(damaged), "fuzz.hint")
    except CorruptionError:
        return
    assert resealed or bytes(damaged) == pristine, "damage got past the hint's CRC"


def check_hint_recovery(recipe: Recipe) -> None:
    """Open a compacted store whose hint was damaged: the same contents as a full scan.

    A damaged hint must be ignored and its segment scanned. A hint re-sealed
    with a valid CRC (a forgery, not a crash) may mislead the index, but never
    into showing a value that was not written for its key, and every error is
    a CorruptionError.
    """
    from engine.hints import HINT_SUFFIX

    if not callable(getattr(Engine, "compact", None)):
        return
    fs = MemoryFileSystem()
    written: dict[bytes, set[bytes]] = {}
    options: dict[str, Any] = {"sync": "none", "segment_size": 256, "clock": lambda: 1e6}
    with open_engine(DIRECTORY, fs, **options) as db:
        for i in range(2 + recipe.below(14)):
            key = _KEYS[recipe.below(len(_KEYS))]
            if recipe.chance(25):
                db.delete(key)
            else:
                value = b"%d:" % i + bytes([recipe.byte()]) * recipe.below(30)
                db.put(key, value, ttl=None if recipe.chance(80) else 1e9)
                written.setdefault(key, set()).add(value)
        db.compact()
    hints = [p for p in fs.files if p.endswith(HINT_SUFFIX)]
    if not hints:
        return
    target = hints[recipe.below(len(hints))]
    scanned = _contents_without(fs, set(hints), options)
    damaged = bytearray(fs.files[target].data)
    pristine = bytes(damaged)
    _damage(recipe, [damaged])
    resealed = recipe.chance(30) and len(damaged) >= 4
    if resealed:
        damaged[-4:] = struct.pack("<I", crc32c(bytes(damaged[:-4])))
    fs.files[target].data[:] = damaged
    try:
        with open_engine(DIRECTORY, fs, **options) as db:
            contents = dict(db.scan())
    except CorruptionError:
        assert resealed, "a hint damaged without a valid CRC must fall back to a scan"
        return
    if resealed and bytes(damaged) != pristine:
        for key, value in contents.items():
            assert value in written.get(key, set()), f"{key!r} = {value!r} never written"
    else:
        assert contents == scanned, "the index from the hint differs from a full scan"


def _contents_without(
    fs: MemoryFileSystem, drop: set[str], options: dict[str, Any]
) -> dict[bytes, bytes]:
    copy = MemoryFileSystem()
    copy.dirs = set(fs.dirs)
    copy.files = {
        p: Inode(bytearray(i.data), bytes(i.data)) for p, i in fs.files.items() if p not in drop
    }
    with open_engine(DIRECTORY, copy, **options) as db:
        return dict(db.scan())
