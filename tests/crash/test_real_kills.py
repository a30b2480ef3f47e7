"""Real processes on the real file system: SIGKILL a writer at random moments.

The writer (kill_writer.py) acknowledges each call on a pipe after it returns.
After the kill, the store must hold exactly the state after every acknowledged
call, or after those and the one in flight. A SIGKILL leaves the page cache
alone, so this holds in every sync mode: writes are stores into a shared
mapping of the segment, in the page cache the moment the call returns. Some
kills land while the writer is still recovering what the previous one left.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from engine import Engine
from engine.options import SyncMode

sys.path.insert(0, str(Path(__file__).parent))
from kill_writer import Call, program

WRITER = Path(__file__).with_name("kill_writer.py")
ROUNDS = 5
SEGMENT_SIZE = 4096


def _replay(model: dict[bytes, bytes], call: Call) -> dict[bytes, bytes]:
    after = dict(model)
    changes: Any = (
        call[1] if call[0] == "batch" else [(call[1], call[2] if len(call) > 2 else None)]
    )
    for key, value in changes:
        if value is None:
            after.pop(key, None)
        else:
            after[key] = value
    return after


def _run_and_kill(directory: Path, sync: SyncMode, seed: int, rng: random.Random) -> list[str]:
    """Start a writer, kill it at a random moment, return the lines it printed."""
    proc = subprocess.Popen(
        [sys.executable, str(WRITER), str(directory), sync, str(seed), str(SEGMENT_SIZE)],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == b"opening\n", first
    if rng.random() < 0.3:
        time.sleep(rng.uniform(0, 0.004))  # often inside recovery of the previous round
    else:
        time.sleep(rng.uniform(0.02, 0.25))
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return [first.decode(), *rest.decode().splitlines()]


@pytest.mark.parametrize("sync", ["always", "periodic", "none"])
def test_sigkill_loses_nothing_acknowledged(tmp_path: Path, sync: SyncMode) -> None:
    rng = random.Random(f"kill-{sync}")
    model: dict[bytes, bytes] = {}
    acknowledged = 0
    for round_ in range(ROUNDS):
        lines = _run_and_kill(tmp_path, sync, round_, rng)
        acks = [int(line.split()[1]) for line in lines if line.startswith("ack ")]
        assert acks == list(range(len(acks))), "acknowledgements out of order"
        acknowledged += len(acks)
        calls = program(round_)
        candidates = [model]
        for _ in range(len(acks) + 1):
            candidates.append(_replay(candidates[-1], next(calls)))
        with Engine.open(tmp_path, segment_size=SEGMENT_SIZE) as db:
            store = dict(db.scan())
            assert db.stats()["recovery"]["skipped_bytes"] == 0
        # Every acknowledged call applied; the one in flight may have.
        assert store in candidates[-2:], (
            f"{sync} round {round_}: {len(acks)} calls acknowledged, "
            f"store matches none of the last two prefixes ({len(store)} keys)"
        )
        model = store
    assert acknowledged > 0
    assert os.listdir(tmp_path)
