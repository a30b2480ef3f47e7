"""Every command refuses clearly (one line, documented exit status, no traceback) on a
directory that is not a store, a store held by a live process (the commands that
write; the read-only ones read it, see ``test_reading_a_store_held_by_a_live_process``),
and a damaged store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.cli.conftest import Cli

NOT_A_STORE, LOCKED, DAMAGED = 3, 4, 1

#: Every operating command, with the arguments it needs after DIR.
COMMANDS: list[tuple[str, ...]] = [
    ("stats",),
    ("stats", "--json"),
    ("verify",),
    ("compact",),
    ("dump",),
    ("get", "key001"),
    ("put", "key001", "x"),
    ("delete", "key001"),
    ("list",),
    ("list", "--table", "t"),
]


def _argv(command: tuple[str, ...], directory: Path) -> list[str | Path]:
    return [command[0], directory, *command[1:]]


def _one_line(err: str) -> None:
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("command", [*COMMANDS, ("repair",)], ids=" ".join)
def test_a_directory_that_is_not_a_store_is_refused(
    cli: Cli, tmp_path: Path, command: tuple[str, ...]
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("not a store")
    extra = ["--into", str(tmp_path / "new")] if command == ("repair",) else []
    for directory in (other, tmp_path / "missing", other / "notes.txt"):
        result = cli(*_argv(command, directory), *extra)
        assert result.status == NOT_A_STORE, result.err
        _one_line(result.err)
        assert str(directory) in result.err
    assert sorted(p.name for p in other.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "missing").exists()


#: The commands that write: a live owner keeps them out.
WRITES = [c for c in COMMANDS if c[0] in ("compact", "put", "delete")]


@pytest.mark.parametrize("command", [*WRITES, ("repair",)], ids=" ".join)
def test_a_store_held_by_a_live_process_is_refused(
    cli: Cli, held: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    extra = ["--into", str(tmp_path / "new")] if command == ("repair",) else []
    result = cli(*_argv(command, held), *extra)
    assert result.status == LOCKED, result.err
    _one_line(result.err)
    assert str(held) in result.err and "live process" in result.err
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("command", [c for c in COMMANDS if c[0] != "verify"], ids=" ".join)
def test_a_damaged_store_is_refused(
    cli: Cli, store: Path, flip: Callable[[Path, int], None], command: tuple[str, ...]
) -> None:
    sealed = sorted(store.glob("*.seg"))[0]
    flip(sealed, sealed.stat().st_size // 2)
    before = sealed.read_bytes()
    result = cli(*_argv(command, store))
    assert result.status == DAMAGED, result.err
    _one_line(result.err)
    assert "damaged" in result.err and sealed.name in result.err
    assert "seglog repair" in result.err
    assert sealed.read_bytes() == before


def test_put_creates_a_store_only_when_asked(cli: Cli, tmp_path: Path) -> None:
    new = tmp_path / "new"
    assert cli("put", new, "k", "v").status == NOT_A_STORE
    assert cli("put", new, "k", "v", "--create").status == 0
    assert cli("get", new, "k").stdout == b"v"
    other = tmp_path / "other"
    other.mkdir()
    (other / "file").write_text("x")
    assert cli("put", other, "k", "v", "--create").status == NOT_A_STORE


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in WRITES], ids=" ".join)
def test_reading_a_store_held_by_a_live_process(
    cli: Cli, held: Path, expected: dict[bytes, bytes], command: tuple[str, ...]
) -> None:
    """The read-only commands open a store that another process owns read-only."""
    before = {p.name: p.read_bytes() for p in held.iterdir()}
    result = cli(*_argv(command, held))
    assert result.status == 0, result.err
    if command == ("get", "key001"):
        assert result.stdout == expected[b"key001"]
    elif command == ("list",):
        assert len(result.out.split()) == len(expected)
        assert "key001" in result.out.split()
    elif command == ("verify",):
        assert "healthy" in result.out and "open in another process" in result.out
    assert {p.name: p.read_bytes() for p in held.iterdir()} == before
