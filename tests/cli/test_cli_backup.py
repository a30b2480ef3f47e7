"""``seglog backup`` and ``seglog restore``: incremental, verified, never touching the store."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from engine import Engine

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

#: The store fixture's segment size (tests/cli/conftest.py).
SEGMENT_SIZE = 4096


def contents(path: Path) -> dict[bytes, bytes]:
    with Engine.open(path, auto_compact=False) as db:
        return dict(db.scan())


def fingerprint(path: Path) -> dict[str, str]:
    """Every file's name and SHA-256: what a backup must not change."""
    return {n: hashlib.sha256((path / n).read_bytes()).hexdigest() for n in os.listdir(path)}


def test_backup_then_restore_gives_the_same_store(
    cli: Cli, store: Path, expected: dict[bytes, bytes], tmp_path: Path
) -> None:
    before = fingerprint(store)
    done = cli("backup", store, tmp_path / "backups", "--json")
    assert done.status == 0, done.err
    added = done.json()["added"]
    assert added["backup"]["id"] == 1 and added["files_copied"] >= 1
    assert fingerprint(store) == before  # the store is only read
    restored = cli("restore", tmp_path / "backups", tmp_path / "restored", "--json")
    assert restored.status == 0, restored.err
    assert restored.json()["backup"]["id"] == 1
    assert contents(tmp_path / "restored") == expected
    for name in os.listdir(tmp_path / "restored"):  # copies, never links to the backup
        assert os.stat(tmp_path / "restored" / name).st_nlink == 1


def test_a_store_that_gained_a_segment_costs_a_segment(
    cli: Cli, store: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    assert cli("backup", store, backups).status == 0
    with Engine.open(store, segment_size=SEGMENT_SIZE, auto_compact=False) as db:
        for i in range(60):
            db.put(b"new%03d" % i, b"x" * 40)
        newest = db.stats()["active_segment"]
        grown = sum(s["bytes"] for n, s in db.stats()["segments"].items() if n != newest)
    first = json.loads((backups / "0000000001.json").read_text())["files"]
    done = cli("backup", store, backups, "--json")
    assert done.status == 0, done.err
    added = done.json()["added"]
    new_sealed = grown - sum(f["bytes"] for n, f in first.items() if n.endswith(".seg"))
    # Copied: only the newest segment; everything sealed is linked, old and new alike.
    assert added["bytes_copied"] == os.path.getsize(store / newest)
    assert added["bytes_linked"] >= new_sealed > 0
    two = backups / "0000000002"
    for name in first:
        if name != max(first) and (two / name).exists():
            assert os.path.samefile(backups / "0000000001" / name, two / name)


def test_keep_prunes_old_backups_without_breaking_the_rest(
    cli: Cli, store: Path, expected: dict[bytes, bytes], tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    for _ in range(3):
        assert cli("backup", store, backups).status == 0
    (backups / "0000000009").mkdir()  # a backup cut short: no listing
    done = cli("backup", store, backups, "--keep", "1", "--json")
    assert done.status == 0, done.err
    assert done.json()["added"]["pruned"] == [1, 2, 3, 9]
    assert sorted(os.listdir(backups)) == ["0000000010", "0000000010.json", "LOCK"]
    verified = cli("backup", "--verify", backups, "--json")
    assert verified.status == 0, verified.out
    assert cli("restore", backups, tmp_path / "r").status == 0
    assert contents(tmp_path / "r") == expected


def test_verify_finds_a_damaged_backup_and_restore_refuses_it(
    cli: Cli, store: Path, tmp_path: Path
) -> None:
    backups = tmp_path / "backups"
    assert cli("backup", store, backups).status == 0
    assert cli("backup", store, backups).status == 0
    listing = json.loads((backups / "0000000002.json").read_text())["files"]
    newest = max(n for n in listing if n.endswith(".seg"))  # copied: this backup's own file
    path = backups / "0000000002" / newest
    data = bytearray(path.read_bytes())
    data[40] ^= 0xFF
    path.write_bytes(bytes(data))
    done = cli("backup", "--verify", backups, "--json")
    assert done.status == 1
    checks = {c["id"]: c for c in done.json()["verified"]}
    assert checks[1]["healthy"] and not checks[2]["healthy"]
    assert any("CRC32C mismatch" in p for p in checks[2]["problems"])
    refused = cli("restore", backups, tmp_path / "r", "--id", "2")
    assert refused.status == 1 and "CRC32C mismatch" in refused.err
    assert "CHECKPOINT-INCOMPLETE" in os.listdir(tmp_path / "r")
    assert cli("verify", tmp_path / "r").status == 1  # verify says it is incomplete
    assert cli("restore", backups, tmp_path / "r1", "--id", "1").status == 0


def test_a_store_held_by_a_live_process_is_refused(cli: Cli, held: Path, tmp_path: Path) -> None:
    done = cli("backup", held, tmp_path / "backups")
    assert done.status == 4
    assert "Engine.checkpoint" in done.err and "Traceback" not in done.err


def test_bad_usage_is_refused_with_one_line(cli: Cli, store: Path, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    assert cli("backup", backups).status == 2  # no SRC, nothing to do
    assert cli("backup", store, backups, "--keep", "0").status == 2
    assert cli("restore", backups, tmp_path / "r").status == 2  # no such directory
    assert cli("backup", store, backups).status == 0
    assert cli("restore", backups, tmp_path / "r", "--id", "7").status == 2
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine").write_text("mine")
    done = cli("restore", backups, tmp_path / "full")
    assert done.status == 2 and (tmp_path / "full" / "mine").read_text() == "mine"
    assert cli("backup", tmp_path / "nowhere", backups).status == 3
    assert cli("backup", store, store / "backups").status == 2
    assert not (store / "backups").exists()
