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
from kill_writer import Call, program, thread_program

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


def _run_and_kill(
    directory: Path,
    sync: SyncMode,
    seed: int,
    rng: random.Random,
    threads: int = 0,
    early: float = 0.3,
) -> list[str]:
    """Start a writer, kill it at a random moment, return the lines it printed."""
    args = [str(directory), sync, str(seed), str(SEGMENT_SIZE), str(threads)]
    proc = subprocess.Popen([sys.executable, str(WRITER), *args], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    first = [proc.stdout.readline()]
    assert first == [b"opening\n"], first
    if rng.random() < early:
        time.sleep(rng.uniform(0, 0.004))  # often inside recovery of the previous round
    else:
        if threads:  # let the writers get going, however loaded the machine is
            while first[-1] and not first[-1].startswith(b"ack"):
                first.append(proc.stdout.readline())
        time.sleep(rng.uniform(0.02, 0.25))
    proc.send_signal(signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.returncode
    return [line.decode() for line in first] + rest.decode().splitlines()


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


@pytest.mark.parametrize("sync", ["always", "none"])
def test_sigkill_with_concurrent_writers_loses_nothing_acknowledged(
    tmp_path: Path, sync: SyncMode
) -> None:
    """Four threads write their own keys (sharing fsyncs with sync="always")."""
    threads = 4
    rng = random.Random(f"threads-{sync}")
    lines = _run_and_kill(tmp_path, sync, 0, rng, threads=threads, early=0.0)
    acked = [0] * threads
    for line in lines:
        if line.startswith("ack "):
            thread, serial = map(int, line.split()[1:])
            assert serial == acked[thread], "a thread's acknowledgements out of order"
            acked[thread] += 1
    with Engine.open(tmp_path, segment_size=SEGMENT_SIZE) as db:
        store = dict(db.scan())
    for thread in range(threads):
        calls = thread_program(thread)
        model: dict[bytes, bytes] = {}
        for _ in range(acked[thread]):
            key, value = next(calls)
            model = _replay(model, ("put", key, value) if value else ("delete", key))
        key, value = next(calls)
        in_flight = _replay(model, ("put", key, value) if value else ("delete", key))
        mine = {k: v for k, v in store.items() if k.startswith(b"t%d-" % thread)}
        assert mine in (model, in_flight), f"thread {thread}: {acked[thread]} acknowledged"
    assert sum(acked) > 0
