"""The exhaustive tier: every short workload, crashed at every file operation, every crash kind.

Workloads are every sequence of up to three actions (put, put with a TTL,
delete on two keys; sync; clock advance; reopen; compact where the engine has
it) on tiny segments so rollovers happen, from an empty store, and shorter ones
from a two-segment store and a compacted store. Each crash state is reopened
and checked against the prefix oracle, then probed: crashes during that
recovery, a second recovery, and a write after recovery that must survive the
next crash. ``SEGLOG_CRASH_PROFILE=deep`` (or ``SEGLOG_CRASH_DEPTH=n``) goes
further.
"""

from __future__ import annotations

import os

import pytest

from engine.testing.campaign import exhaustive, setting_from_env
from engine.testing.strategies import profile

#: The deep setting runs for as long as it takes.
pytestmark = pytest.mark.timeout(0 if profile() == "deep" else 600)


def test_every_short_workload_at_every_crash_point() -> None:
    setting = setting_from_env()
    figures = exhaustive(setting, processes=max(2, os.cpu_count() or 1))
    print(f"\n{setting.describe()}\n{figures.summary()}")
    assert figures.workloads > 100 and figures.crash_states > figures.workloads
    assert not figures.violations, "\n".join(str(v) for v in figures.violations[:10])
