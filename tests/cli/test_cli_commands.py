"""``seglog stats/dump/get/put/delete/list`` on healthy stores: exit codes and JSON shapes."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import TYPE_CHECKING

from store_api import LogStore, Record

if TYPE_CHECKING:
    from tests.cli.conftest import Cli

NOT_FOUND, USAGE = 5, 2


def test_stats_json_has_the_engine_figures(cli: Cli, store: Path) -> None:
    result = cli("stats", store, "--json")
    assert result.status == 0, result.err
    stats = result.json()
    assert stats["keys"] == 183
    assert stats["segment_count"] == len(list(store.glob("*.seg")))
    assert set(stats["segments"]) == {p.name for p in store.glob("*.seg")}
    assert stats["live_bytes"] + stats["dead_bytes"] <= stats["disk_bytes"]
    assert stats["recovery"]["records"] > 200 and stats["recovery"]["damage"] == []
    assert stats["open_seconds"] > 0 and "open_memory_bytes" in stats
    human = cli("stats", store)
    assert human.status == 0 and "183" in human.out and "recovery" in human.out


def test_dump_renders_every_live_pair_reversibly(
    cli: Cli, store: Path, expected: dict[bytes, bytes]
) -> None:
    lines = cli("dump", store).lines()
    decoded = {}
    for line in lines:
        assert set(line) == {"key", "value", "expires_at"}
        key, value = line["key"], line["value"]
        key = base64.b64decode(key["base64"]) if isinstance(key, dict) else key.encode()
        value = base64.b64decode(value["base64"]) if isinstance(value, dict) else value.encode()
        decoded[key] = value
    assert list(decoded) == sorted(expected)
    assert decoded == expected
    some = cli("dump", store, "--prefix", "key19").lines()
    assert [line["key"] for line in some] == [f"key19{i}" for i in range(1, 10)]
    binary = cli("dump", store, "--base64", "--prefix", base64.b64encode(b"bin\xff").decode())
    assert len(binary.lines()) == 1


def test_raw_get_put_delete_list(cli: Cli, store: Path) -> None:
    assert cli("get", store, "key001").stdout == b"value 1"
    assert cli("get", store, "key010").status == NOT_FOUND
    assert "not found" in cli("get", store, "key010").err
    assert cli("put", store, "new", "hello", "--ttl", "3600").status == 0
    entry = cli("get", store, "new", "--json").json()
    assert entry["key"] == "new" and entry["value"] == "hello" and entry["expires_at"] > 0
    fe = base64.b64encode(b"\xfe").decode()
    assert cli("put", store, "--base64", fe, stdin=b"\x00\xff").status == 0
    raw = cli("get", store, "--base64", fe)
    assert raw.stdout == b"\x00\xff"
    assert cli("delete", store, "new").status == 0
    assert cli("delete", store, "new").status == 0
    assert cli("get", store, "new").status == NOT_FOUND
    keys = cli("list", store, "--prefix", "key00").out.split()
    assert keys == [f"key00{i}" for i in range(1, 10)]
    assert cli("list", store, "--limit", "3").out.split() == [
        "batch-a",
        "batch-b",
        "bin\\xff\\x00key",
    ]
    listed = [json.loads(line) for line in cli("list", store, "--json").out.splitlines()]
    assert {"base64": base64.b64encode(b"\xfe").decode()} in listed
    assert cli("get", store, "--base64", "***").status == USAGE


def test_store_api_mode_uses_store_api_keys(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "api"
    with LogStore(path, database="app", table="users") as store:
        store.write(Record("ada", b"mathematician", {"born": 1815}))
    assert cli("get", path, "ada", "--database", "app", "--table", "users").stdout == (
        b"mathematician"
    )
    assert cli("get", path, "ada", "--database", "app").status == NOT_FOUND
    put = cli("put", path, "bob", "x", "--database", "app", "--table", "users", "--ttl", "60")
    assert put.status == 0, put.err
    meta = cli("put", path, "cy", "y", "--table", "t", "--metadata", '{"n": [1, 2]}')
    assert meta.status == 0, meta.err
    record = cli("get", path, "cy", "--table", "t", "--json").json()
    assert record == {"key": "cy", "value": "y", "metadata": {"n": [1, 2]}, "ttl": None}
    listed = cli("list", path, "--database", "app", "--table", "users").out.split()
    assert listed == ["ada", "bob"]
    dumped = cli("dump", path, "--database", "app", "--table", "users").lines()
    assert dumped[0] == {
        "key": "ada",
        "value": "mathematician",
        "metadata": {"born": 1815},
        "ttl": None,
    }
    assert 0 < dumped[1]["ttl"] <= 60
    assert cli("delete", path, "ada", "--database", "app", "--table", "users").status == 0
    with LogStore(path, database="app", table="users") as store:
        assert store.list() == ["bob"]
        assert store.list(table="t") == []
        assert store.list(database="micro", table="t") == ["cy"]
    assert cli("put", path, "k", "v", "--metadata", "{}").status == USAGE
    assert cli("put", path, "k", "v", "--table", "t", "--metadata", "[1]").status == USAGE
