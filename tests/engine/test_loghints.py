"""Log segment hints (``.shint``): written at close, trusted only whole and matching."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
from crc32c import crc32c

import engine.recovery
from engine import CorruptionError, Engine
from engine.format import FILE_HEADER_SIZE
from engine.loghints import build_log_hint, decode_log_hint, log_hint_name
from engine.recovery import replay_segment

SEGMENT = 4096


def fill(directory: Path, items: list[tuple[bytes, bytes | None]]) -> dict[bytes, bytes]:
    """Apply puts (and deletes, value None) and close; return the expected contents."""
    model: dict[bytes, bytes] = {}
    with Engine.open(directory, segment_size=SEGMENT) as db:
        for key, value in items:
            if value is None:
                db.delete(key)
                model.pop(key, None)
            else:
                db.put(key, value)
                model[key] = value
    return model


def contents(directory: Path) -> dict[bytes, bytes]:
    with Engine.open(directory, segment_size=SEGMENT) as db:
        return dict(db.scan())


def hints(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.shint"))


def scanned(directory: Path, tmp_path: Path) -> dict[bytes, bytes]:
    """The contents of a copy of ``directory`` without its log hints (a full scan)."""
    copy = tmp_path / "scanned"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(directory, copy)
    for hint in hints(copy):
        hint.unlink()
    return contents(copy)


def test_close_hints_every_log_segment_and_reopen_uses_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = tmp_path / "store"
    model = fill(store, [(b"k%05d" % i, b"v" * 60) for i in range(400)])
    segments = sorted(store.glob("*.seg"))
    assert len(segments) > 3
    assert [h.stem for h in hints(store)] == [s.stem for s in segments]
    scans: list[int] = []

    def counting(sink: object, segment_id: int, *args: object, **kwargs: object) -> int:
        scans.append(segment_id)
        return replay_segment(sink, segment_id, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(engine.recovery, "replay_segment", counting)
    assert contents(store) == model
    assert scans == []
    assert scanned(store, tmp_path) == model
    assert len(scans) == len(segments)


def test_a_damaged_segment_is_scanned_not_served_from_its_hint(tmp_path: Path) -> None:
    """A hint covers every byte of its segment: damage anywhere is found as without hints."""
    store = tmp_path / "store"
    fill(store, [(b"k%05d" % i, b"v" * 60) for i in range(400)])
    first = sorted(store.glob("*.seg"))[0]
    pristine = first.read_bytes()
    for at in (FILE_HEADER_SIZE + 40, len(pristine) // 2, len(pristine) - 1):
        data = bytearray(pristine)
        data[at] ^= 0xFF
        first.write_bytes(bytes(data))
        with pytest.raises(CorruptionError, match="damaged record"):
            contents(store)
    first.write_bytes(pristine)
    assert len(hints(store)) == len(list(store.glob("*.seg")))


def test_overwrites_and_deletes_within_and_across_segments(tmp_path: Path) -> None:
    store = tmp_path / "store"
    items: list[tuple[bytes, bytes | None]] = []
    for i in range(600):
        key = b"key%03d" % (i % 37)
        items.append((key, None if i % 5 == 0 else b"value-%d" % i))
    model = fill(store, items)
    assert hints(store)
    assert contents(store) == model == scanned(store, tmp_path)
    # Writes after a reopen make the newest segment's hint stale; the next close renews it.
    with Engine.open(store, segment_size=SEGMENT) as db:
        db.put(b"key001", b"new")
        model[b"key001"] = b"new"
    assert contents(store) == model == scanned(store, tmp_path)


def test_a_stale_hint_of_the_same_size_is_not_trusted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A hint from another store whose segment has the very same length."""
    one, two = tmp_path / "one", tmp_path / "two"
    fill(one, [(b"k%04d" % i, b"a" * 40) for i in range(30)])
    model = fill(two, [(b"k%04d" % i, b"b" * 40) for i in range(30)])
    assert (one / "0000000001.seg").stat().st_size == (two / "0000000001.seg").stat().st_size
    shutil.copy(one / log_hint_name(1), two / log_hint_name(1))
    with caplog.at_level(logging.INFO):
        assert contents(two) == model
    assert "bytes changed since it was written" in caplog.text


def test_torn_or_damaged_hint_is_never_trusted(tmp_path: Path) -> None:
    store = tmp_path / "store"
    model = fill(store, [(b"k%04d" % i, b"v%d" % i) for i in range(50)])
    (hint,) = hints(store)
    pristine = hint.read_bytes()
    for cut in range(0, len(pristine), 7):
        hint.write_bytes(pristine[:cut])
        assert contents(store) == model
    for at in range(0, len(pristine), 13):
        damaged = bytearray(pristine)
        damaged[at] ^= 0x5A
        hint.write_bytes(bytes(damaged))
        assert contents(store) == model


def test_appends_after_the_hint_are_scanned_not_lost(tmp_path: Path) -> None:
    """A crash (no close) after writing past a hinted newest segment."""
    store = tmp_path / "store"
    model = fill(store, [(b"k%04d" % i, b"v") for i in range(20)])
    saved = store / "saved.shint"
    shutil.copy(store / log_hint_name(1), saved)
    db = Engine.open(store, segment_size=SEGMENT)
    db.put(b"late", b"write")
    db.sync()
    db._writer.release()  # a crash: no close, no new hint
    db._owner_lock.release()  # type: ignore[union-attr]
    db._owner_lock = None
    model[b"late"] = b"write"
    assert contents(store) == model


def test_batches_get_no_hint(tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Engine.open(store, segment_size=1 << 20) as db, db.batch() as batch:
        batch.put(b"a", b"1")
        batch.put(b"b", b"2")
    assert not hints(store)
    assert contents(store) == {b"a": b"1", b"b": b"2"}


def test_build_refuses_anything_but_sound_plain_records(tmp_path: Path) -> None:
    store = tmp_path / "store"
    fill(store, [(b"k%04d" % i, b"v") for i in range(10)])
    data = (store / "0000000001.seg").read_bytes()
    assert build_log_hint(data) is not None
    assert build_log_hint(data[:-1]) is None
    assert build_log_hint(data + b"\0") is None
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    assert build_log_hint(bytes(damaged)) is None
    hint, crc = decode_log_hint((store / log_hint_name(1)).read_bytes(), "x")
    assert len(hint.keys) == 10 and crc == crc32c(data)
