"""Injected I/O errors (``engine.testing.faults``): every file operation of the CI
workloads fails once with EIO, ENOSPC and EACCES, every file write and read comes back
short once; only StorageErrors come out, and the store reopens with everything
acknowledged, also after a power cut where promised."""

from __future__ import annotations

import contextlib

import pytest

from engine.fs import FileHandle
from engine.testing.actions import Action
from engine.testing.faults import check_workload, run_faults
from engine.writer import SegmentWriter


def test_every_operation_failing_loses_nothing() -> None:
    figures = run_faults(["always", "none"], 1)
    print(figures.summary())
    assert figures.violations == [], figures.violations[:5]
    assert figures.injected > 500 and figures.points > 200


def test_an_fsync_error_reported_as_success_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The classic fsync mistake: an error swallowed, the write acknowledged as durable."""

    def swallowing(self: SegmentWriter) -> None:
        if self.active is not None:
            with contextlib.suppress(OSError):
                self.active.fsync()

    monkeypatch.setattr(SegmentWriter, "_fsync_active", swallowing)
    figures = run_faults(["always"], 1, batch=False)
    assert any("lost" in problem for problem in figures.violations)


def test_a_short_write_taken_for_a_whole_one_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other classic mistake: ignoring what ``write`` returned."""
    import engine.manifest

    def once(handle: FileHandle, data: bytes) -> None:
        handle.write(data)

    monkeypatch.setattr(engine.manifest, "write_all", once)
    figures = check_workload([Action("put", b"a"), Action("put", b"a"), Action("compact")], "none")
    assert any("short write" in problem for problem in figures.violations)
