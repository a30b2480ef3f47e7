"""``seglog verify`` and ``seglog repair`` on healthy, damaged and crashed stores.

Neither may modify the store it reads; verify must say exactly where damage is,
and repair must salvage everything intact and say what it lost.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import Engine
from engine.format import (
    MIN_HEADER_SIZE,
    PUT,
    VERSION,
    FileKind,
    check_file_header,
    encode_file_header,
    encode_record,
)
from engine.reader import SECTOR

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.cli.conftest import Cli

DAMAGED = 1


def _files(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir())}


def _find(store: Path, key: bytes) -> tuple[Path, int]:
    """The segment holding ``key``'s record, and the offset of the key in it."""
    for segment in sorted(store.glob("*.seg")):
        offset = segment.read_bytes().find(key)
        if offset > 0:
            return segment, offset
    raise AssertionError(f"{key!r} not found")


def _dumped(cli: Cli, path: Path) -> dict[bytes, bytes]:
    result = cli("dump", path)
    assert result.status == 0, result.err
    return {_bytes(line["key"]): _bytes(line["value"]) for line in result.lines()}


def _bytes(rendered: Any) -> bytes:
    if isinstance(rendered, str):
        return rendered.encode()
    return base64.b64decode(rendered["base64"])


def test_verify_passes_a_healthy_store_and_describes_it(cli: Cli, store: Path) -> None:
    result = cli("verify", store, "--json")
    assert result.status == 0, result.err
    report = result.json()
    assert report["healthy"] is True and report["problems"] == []
    assert report["locked"] is True
    assert len(report["segments"]) >= 3
    assert report["records"] == sum(s["records"] for s in report["segments"]) > 200
    assert report["bytes"] == sum(p.stat().st_size for p in store.glob("*.seg"))
    assert {"file", "bytes", "records", "unused_bytes", "damaged"} <= set(report["segments"][0])
    human = cli("verify", store)
    assert human.status == 0 and "healthy" in human.out


def test_verify_locates_flipped_bytes_without_touching_the_store(
    cli: Cli, store: Path, flip: Callable[[Path, int], None]
) -> None:
    sealed = sorted(store.glob("*.seg"))[1]
    offset = sealed.stat().st_size // 2
    flip(sealed, offset)
    before = _files(store)
    result = cli("verify", store, "--json")
    assert result.status == DAMAGED
    report = result.json()
    assert not report["healthy"]
    (problem,) = report["problems"]
    assert problem["file"] == sealed.name and problem["kind"] == "corrupt"
    assert problem["offset"] <= offset < problem["offset"] + problem["length"]
    assert "intact records resume" in problem["detail"]
    assert [s["damaged"] for s in report["segments"]].count(True) == 1
    human = cli("verify", store)
    assert human.status == DAMAGED and f"{sealed.name} at offset {problem['offset']}" in human.out
    assert _files(store) == before


def test_verify_reports_a_torn_tail_that_opening_then_cuts(cli: Cli, store: Path) -> None:
    newest = sorted(store.glob("*.seg"))[-1]
    size = newest.stat().st_size
    with newest.open("r+b") as f:
        f.truncate(size - 3)
    result = cli("verify", store, "--json")
    assert result.status == DAMAGED
    (problem,) = result.json()["problems"]
    assert problem["file"] == newest.name and problem["kind"] == "torn-tail"
    assert problem["offset"] + problem["length"] == size - 3
    (claim,) = problem["claims"]
    assert _bytes(claim["key"]) == b"bin\xff\x00key"
    assert newest.stat().st_size == size - 3
    opened = cli("stats", store)
    assert opened.status == 0 and "torn tail" in opened.err
    assert cli("verify", store).status == 0


def test_a_sealed_segment_truncated_mid_record_is_damage(cli: Cli, store: Path) -> None:
    sealed = sorted(store.glob("*.seg"))[0]
    with sealed.open("r+b") as f:
        f.truncate(sealed.stat().st_size - 5)
    result = cli("verify", store, "--json")
    assert result.status == DAMAGED
    (problem,) = result.json()["problems"]
    assert problem["kind"] == "corrupt-tail" and problem["file"] == sealed.name
    (claim,) = problem["claims"]
    assert claim["key"].startswith("key")


def test_repair_salvages_everything_intact_and_names_what_it_lost(
    cli: Cli, store: Path, expected: dict[bytes, bytes], flip: Callable[[Path, int], None]
) -> None:
    sealed, offset = _find(store, b"key105")
    flip(sealed, offset + len(b"key105"))
    before = _files(store)
    into = store.parent / "repaired"
    result = cli("repair", store, "--into", into, "--json")
    assert result.status == DAMAGED, result.err
    report = result.json()
    assert report["complete"] is False and len(report["damage"]) == 1
    (affected,) = report["affected_keys"]
    assert affected["key"] == "key105" and affected["outcome"].startswith("lost")
    assert affected["where"] == f"{sealed.name} at offset {offset - MIN_HEADER_SIZE}"
    lost = b"key105"
    assert report["keys_written"] == len(expected) - 1
    assert report["deleted_keys"] == 20 and report["expired_keys"] == 1
    assert _files(store) == before
    assert cli("verify", into).status == 0
    assert _dumped(cli, into) == {k: v for k, v in expected.items() if k != lost}


def test_repair_of_a_healthy_store_loses_nothing(
    cli: Cli, store: Path, expected: dict[bytes, bytes]
) -> None:
    into = store.parent / "copy"
    result = cli("repair", store, "--into", into)
    assert result.status == 0, result.err
    assert "nothing lost" in result.out
    assert _dumped(cli, into) == expected


def test_repair_drops_a_batch_whose_commit_marker_is_torn(cli: Cli, store: Path) -> None:
    with Engine.open(store) as db, db.batch() as batch:
        batch.put(b"late-1", b"1")
        batch.put(b"late-2", b"2")
    newest = sorted(store.glob("*.seg"))[-1]
    with newest.open("r+b") as f:
        f.truncate(newest.stat().st_size - 2)
    report = cli("verify", store, "--json").json()
    kinds = sorted(p["kind"] for p in report["problems"])
    assert kinds == ["incomplete-batch", "torn-tail"]
    into = store.parent / "repaired"
    result = cli("repair", store, "--into", into, "--json")
    assert result.status == DAMAGED
    keys = {a["key"]: a["outcome"] for a in result.json()["affected_keys"]}
    assert keys["late-1"].startswith("lost") and keys["late-2"].startswith("lost")
    assert cli("get", into, "late-1").status == 5


def test_repair_refuses_a_target_that_is_not_new(cli: Cli, store: Path) -> None:
    assert cli("repair", store, "--into", store).status == 2
    occupied = store.parent / "occupied"
    occupied.mkdir()
    (occupied / "x").write_text("x")
    result = cli("repair", store, "--into", occupied)
    assert result.status == 2 and "empty" in result.err


def test_verify_calls_a_gap_unwritten_exactly_when_opening_cuts_it_silently(
    cli: Cli, tmp_path: Path
) -> None:
    """A record of the newest segment that straddles a sector boundary is damaged: garbage
    before the boundary, zeros after it, and intact records follow. A lost sector reads as
    zeros, so opening takes the damage for unwritten space and cuts the segment there
    without complaint; verify must call it the same (it used to report it as corrupt:
    it looked for a whole sector's run of zeros, recovery for one zero sector clipped
    to the damage)."""
    store = tmp_path / "gap"
    with Engine.open(store, auto_compact=False) as db:
        for i in range(20):
            db.put(b"key%03d" % i, b"v" * 100)
    (segment,) = store.glob("*.seg")
    data = bytearray(segment.read_bytes())
    bounds = [data.find(b"key%03d" % i) - MIN_HEADER_SIZE for i in range(20)]
    # The first record (from the third on) that straddles a sector boundary.
    damaged = next(i for i in range(2, 19) if bounds[i] // SECTOR != bounds[i + 1] // SECTOR)
    start, end = bounds[damaged], bounds[damaged + 1]
    boundary = (start // SECTOR + 1) * SECTOR
    data[start:boundary] = b"\xa5" * (boundary - start)
    data[boundary:end] = bytes(end - boundary)
    segment.write_bytes(bytes(data))

    result = cli("verify", store, "--json")
    assert result.status == 1
    (problem,) = result.json()["problems"]
    assert problem["kind"] == "unwritten-gap"
    assert (problem["offset"], problem["length"]) == (start, end - start)

    with Engine.open(store) as db:
        recovery = db.stats()["recovery"]
        assert recovery["damage"] == [] and recovery["truncated_bytes"] > 0
        assert db.get(b"key%03d" % (damaged - 1)) == b"v" * 100
        assert db.get(b"key%03d" % damaged) is None
        assert db.get(b"key019") is None, "opening cuts the records after the gap"


def test_verify_and_repair_read_a_version_1_store(cli: Cli, tmp_path: Path) -> None:
    """A store an older seglog wrote: verify reads it, names damage in it by its old
    header, and repair salvages it into a store of today's format."""
    store = tmp_path / "old"
    store.mkdir()
    records = [encode_record(PUT, i + 1, 0.0, b"key%03d" % i, b"v" * 40, 1) for i in range(30)]
    segment = store / "0000000001.seg"
    segment.write_bytes(encode_file_header(FileKind.SEGMENT, 1) + b"".join(records))
    healthy = cli("verify", store, "--json")
    assert healthy.status == 0, healthy.err
    assert healthy.json()["records"] == 30
    _, offset = _find(store, b"key007")
    data = bytearray(segment.read_bytes())
    data[offset + 10] ^= 0xFF  # in key007's value: its header still reads
    segment.write_bytes(bytes(data))
    damaged = cli("verify", store, "--json").json()
    (problem,) = damaged["problems"]
    assert problem["kind"] == "corrupt-tail" or problem["kind"] == "corrupt"
    assert [claim["key"] for claim in problem["claims"]] == ["key007"]
    into = tmp_path / "repaired"
    result = cli("repair", store, "--into", into, "--json")
    assert result.status == DAMAGED, result.err
    assert result.json()["keys_written"] == 29
    with Engine.open(into) as db:
        assert len(db) == 29 and db.get(b"key008") == b"v" * 40
    assert all(
        check_file_header(p.read_bytes(), FileKind.SEGMENT, p.name) == VERSION
        for p in into.glob("*.seg")
    )
