"""The progress bar path of ``verify`` and ``repair`` (a terminal and a large store, faked)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from seglog_cli.commands import _common, repair, verify
from seglog_cli.commands._layout import read_layout


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_verify_and_repair_draw_progress_on_a_terminal(
    store: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(_common, "PROGRESS_THRESHOLD", 0)
    monkeypatch.setattr(verify, "PROGRESS_STEP", 64)
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(
        _common, "console", lambda stderr=False: Console(file=terminal, force_terminal=True)
    )
    directory = str(store)
    layout = read_layout(directory)
    with _common.progress_bar(layout.size(directory), "verify", False) as advance:
        assert advance is not None
        report = verify.verify(directory, layout, locked=False, advance=advance)
    assert report.healthy
    with _common.progress_bar(layout.size(directory), "repair", False) as advance:
        salvaged = repair.repair(
            directory, str(store.parent / "new"), layout, now=0.0, advance=advance
        )
    assert not salvaged.lost
    assert "verify" in terminal.getvalue() and "repair" in terminal.getvalue()
    with _common.progress_bar(1 << 40, "verify", True) as advance:
        assert advance is None
