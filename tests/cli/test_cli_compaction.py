"""``seglog compact``, and ``verify``/``repair`` on compacted stores: hints, manifest, leftovers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from engine import CorruptionError, Engine
from engine.hints import HintBuilder, decode_hint

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.cli.conftest import Cli

DAMAGED = 1


def _compact(cli: Cli, store: Path) -> dict[str, object]:
    result = cli("compact", store, "--json")
    assert result.status == 0, result.err
    report: dict[str, object] = result.json()
    return report


def _problems(cli: Cli, store: Path) -> list[dict[str, object]]:
    result = cli("verify", store, "--json")
    assert result.status == (1 if result.json()["problems"] else 0)
    problems: list[dict[str, object]] = result.json()["problems"]
    return problems


def test_compact_reclaims_and_the_result_verifies(cli: Cli, store: Path) -> None:
    report = _compact(cli, store)
    assert report["disk_bytes_after"] < report["disk_bytes_before"]  # type: ignore[operator]
    details = report["report"]
    assert isinstance(details, dict) and details["records_out"] == 183
    assert list(store.glob("*.cseg")) and list(store.glob("*.hint"))
    verified = cli("verify", store, "--json").json()
    assert verified["healthy"], verified["problems"]
    assert any(s["file"].endswith(".cseg") for s in verified["segments"])
    stats = cli("stats", store, "--json").json()
    assert stats["keys"] == 183 and stats["last_compaction_at"] is not None
    human = cli("stats", store).out
    assert "last compaction" in human and "never" not in human


def test_a_damaged_hint_is_reported_though_opening_falls_back(
    cli: Cli, store: Path, flip: Callable[[Path, int], None]
) -> None:
    _compact(cli, store)
    (hint,) = store.glob("*.hint")
    flip(hint, hint.stat().st_size // 2)
    (problem,) = _problems(cli, store)
    assert problem["file"] == hint.name and problem["kind"] == "bad-hint"
    assert cli("get", store, "key001").stdout == b"value 1"
    hint.unlink()
    (problem,) = _problems(cli, store)
    assert problem["kind"] == "missing-hint"


def test_a_hint_that_disagrees_with_its_segment_is_damage(cli: Cli, store: Path) -> None:
    _compact(cli, store)
    (hint_file,) = store.glob("*.hint")
    hint = decode_hint(hint_file.read_bytes(), hint_file.name)
    forged = HintBuilder()
    for i, (_offset, size, rtype, seq, expires_at, key) in enumerate(hint.records()):
        forged.add(key, seq + (i == 5), size, rtype, expires_at)
    hint_file.write_bytes(forged.encode())
    (problem,) = _problems(cli, store)
    assert problem["kind"] == "hint-mismatch" and "entry 5" in str(problem["detail"])


def test_leftovers_are_noted_and_dropped_inputs_are_not_salvaged(cli: Cli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    with Engine.open(store, segment_size=4096, auto_compact=False) as db:
        db.put(b"doomed", b"old value")
        for i in range(150):
            db.put(b"filler%03d" % i, b"x" * 20)
        db.delete(b"doomed")
    inputs = tmp_path / "inputs"
    shutil.copytree(store, inputs)
    _compact(cli, store)
    assert cli("get", store, "doomed").status == 5
    # A crash after the commit, before the inputs were deleted, leaves them behind.
    shutil.copy(inputs / "0000000001.seg", store / "0000000001.seg")
    (store / "0000000099.cseg").write_bytes(b"an uncommitted output")
    verified = cli("verify", store, "--json").json()
    assert verified["healthy"], verified["problems"]
    notes = "\n".join(verified["notes"])
    assert "0000000001.seg: an input that the last compaction replaced" in notes
    assert "0000000099.cseg: left by a compaction that never committed" in notes
    into = tmp_path / "repaired"
    assert cli("repair", store, "--into", into).status == 0
    assert cli("get", into, "doomed").status == 5
    assert cli("get", into, "filler007").stdout == b"x" * 20


def test_a_damaged_manifest_is_refused_and_reported(cli: Cli, store: Path) -> None:
    _compact(cli, store)
    manifest = store / "MANIFEST"
    manifest.write_bytes(manifest.read_bytes().replace(b'"next": ', b'"next": 1'))
    (problem,) = _problems(cli, store)
    assert problem["file"] == "MANIFEST" and problem["kind"] == "bad-manifest"
    opened = cli("stats", store)
    assert opened.status == DAMAGED and "MANIFEST" in opened.err


def test_a_missing_compacted_segment_names_the_keys_it_held(cli: Cli, store: Path) -> None:
    _compact(cli, store)
    (segment,) = store.glob("*.cseg")
    segment.unlink()
    (problem,) = _problems(cli, store)
    assert problem["kind"] == "missing-segment" and problem["file"] == segment.name
    claims = problem["claims"]
    assert isinstance(claims, list) and len(claims) == 183
    into = store.parent / "repaired"
    result = cli("repair", store, "--into", into, "--json")
    assert result.status == DAMAGED
    outcomes = {str(a["key"]): a["outcome"] for a in result.json()["affected_keys"]}
    assert outcomes["key001"].startswith("lost")


def test_a_zero_sector_in_the_newest_segment_is_an_unwritten_gap(cli: Cli, store: Path) -> None:
    newest = sorted(store.glob("*.seg"))[-1]
    data = bytearray(newest.read_bytes())
    assert len(data) > 1200
    data[512:1024] = bytes(512)
    newest.write_bytes(bytes(data))
    (problem,) = _problems(cli, store)
    assert problem["kind"] == "unwritten-gap" and problem["file"] == newest.name
    with Engine.open(store) as db:  # opening cuts it, as verify says
        assert db.stats()["recovery"]["truncated_bytes"] > 0


def test_zeros_that_fill_no_whole_sector_are_corruption_as_opening_says(
    cli: Cli, store: Path
) -> None:
    """A power cut loses whole sectors; 600 zeros across a sector boundary are not one."""
    newest = sorted(store.glob("*.seg"))[-1]
    data = bytearray(newest.read_bytes())
    data[100:700] = bytes(600)
    newest.write_bytes(bytes(data))
    (problem,) = _problems(cli, store)
    assert problem["kind"] == "corrupt" and problem["file"] == newest.name
    with pytest.raises(CorruptionError, match="followed by valid records"):
        Engine.open(store)


def test_a_damaged_record_under_a_sound_hint_is_logged_and_refused_when_read(
    cli: Cli, store: Path, flip: Callable[[Path, int], None]
) -> None:
    _compact(cli, store)
    (segment,) = store.glob("*.cseg")
    offset = segment.read_bytes().find(b"key105")
    flip(segment, offset + len(b"key105") + 2)
    assert cli("get", store, "key104").stdout == b"value 104"
    result = cli("get", store, "key105")
    assert result.status == DAMAGED
    logged, refusal = result.err.strip().splitlines()
    assert "ERROR: seglog.engine" in logged and "CRC mismatch" in logged
    assert refusal.startswith("seglog get: the store is damaged")
    (problem,) = _problems(cli, store)
    assert problem["file"] == segment.name and problem["kind"] == "corrupt"
