"""Checkpoints in the crash simulator: one at every point of every CI workload, each crashed.

At every point of every workload of the crash campaign's CI setting (between
actions and between the file operations of each, compactions included) a
checkpoint is taken. It must leave the source untouched and open equal to the
model at its sequence number; and a crash at every one of its own file
operations must leave it not begun, marked incomplete (and refused by open),
or complete and equal. The mutants below show the checks catch a checkpoint
that drops a step its correctness rests on.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

import pytest

from engine.checkpoint import MARKER, FileCopier
from engine.testing.actions import Action, quiet_logs
from engine.testing.campaign import COMPACTED, SEEDED, setting_from_env
from engine.testing.checkpoints import CheckpointProbe, checkpoint_campaign
from engine.testing.strategies import profile

pytestmark = pytest.mark.timeout(0 if profile() == "deep" else 900)


def test_a_checkpoint_at_every_point_of_every_ci_workload() -> None:
    setting = setting_from_env()
    figures = checkpoint_campaign(setting, processes=max(2, os.cpu_count() or 1))
    print(f"\n{setting.describe()}\ncheckpoints: {figures.summary()}")
    assert figures.workloads > 100 and figures.checkpoints > figures.workloads
    assert figures.skipped_locked > 0  # compactions were caught mid-way
    assert set(figures.outcomes) == {"not begun", "marked incomplete", "complete"}
    assert not figures.problems, "\n".join(figures.problems[:10])


#: A few workloads that reach every kind of file a checkpoint takes.
SAMPLE = [
    ((), (Action("put", b"a"), Action("batch", items=((b"a", True), (b"b", False))))),
    (SEEDED, (Action("delete", b"a"), Action("compact"))),
    (COMPACTED, (Action("put", b"b"),)),
]


def problems_with(monkeypatch: pytest.MonkeyPatch, method: str, replacement: object) -> list[str]:
    """What the probe finds on SAMPLE with ``FileCopier.<method>`` replaced."""
    found: list[str] = []
    with monkeypatch.context() as patched, quiet_logs():
        if replacement is not None:
            patched.setattr(FileCopier, method, replacement)
        for sync in ("always", "none"):
            probe = CheckpointProbe(sync=sync)
            for prologue, actions in SAMPLE:
                found += probe.run(actions, prologue=prologue)
    return found


def test_the_sample_passes_as_the_checkpoint_is(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not problems_with(monkeypatch, "write", None)


def _unfsynced_write(self: FileCopier, name: str, data: bytes | Iterable[bytes]) -> None:
    handle = self.fs.open(os.path.join(self.dest, name), create=True)
    for chunk in [data] if isinstance(data, bytes) else data:
        self.bytes_copied += handle.write(chunk)  # no fsync: a power cut can empty the copy
    handle.close()
    self.files_copied += 1


def _unmark_before_dir_fsync(self: FileCopier) -> None:
    self.fs.unlink(os.path.join(self.dest, MARKER))  # before the entries are durable
    self.fs.fsync_dir(self.dest)


_real_write = FileCopier.write


def _no_manifest(self: FileCopier, name: str, data: bytes | Iterable[bytes]) -> None:
    if name != "MANIFEST":  # compacted segments without a manifest: open refuses
        _real_write(self, name, data)


@pytest.mark.parametrize(
    ("method", "replacement"),
    [
        pytest.param("write", _unfsynced_write, id="copies not fsynced"),
        pytest.param("finish", _unmark_before_dir_fsync, id="marker removed too early"),
        pytest.param("write", _no_manifest, id="no manifest"),
    ],
)
def test_a_broken_checkpoint_is_caught(
    method: str, replacement: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert problems_with(monkeypatch, method, replacement)
