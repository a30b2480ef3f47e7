"""Checkpoints and incremental backups: how long, what writers feel, what a backup costs.

A store of about ``--mib`` MiB (4 KiB values, 64 MiB segments, ``sync="none"``)
is built on the file system of ``--dir``. Then:

* **checkpoint**: ``Engine.checkpoint`` into the same file system, ``--rounds``
  times, against ``shutil.copytree`` of the same (closed) directory, the
  copy an operator would otherwise make; the ratio is the figure;
* **writers**: ``--threads`` threads put 100-byte values with
  ``sync="always"`` for ``--seconds`` seconds, timing every put; in
  alternating windows a checkpoint is taken every 100 ms or none is, so the
  p50 and p99 latencies with and without checkpoints come from the same
  minutes of the shared machine;
* **incremental backup**: two ``BackupSet.back_up`` calls with ``--changed``
  MiB of new writes between them, once with the backups on the store's file
  system (hard links) and once on ``--other`` (another file system, such as
  ``/dev/shm``: copies, then links to the previous backup); bytes copied
  against bytes changed.

Check (exit status 1 if it fails): a checkpoint on the same file system takes
under a second.

    .venv/bin/python benchmarks/bench_checkpoint.py [--mib 1024] [--dir /tmp] [--other /dev/shm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import threading
import time
from typing import Any

from engine import Engine
from engine.backups import BackupSet

VALUE_SIZE = 4096
SEGMENT_SIZE = 64 << 20
MAX_CHECKPOINT_SECONDS = 1.0


def build(path: str, mib: int) -> dict[str, Any]:
    """Write ``mib`` MiB of 4 KiB values; return the store's size and the seconds it took."""
    started = time.perf_counter()
    value = os.urandom(VALUE_SIZE)
    with Engine.open(path, sync="none", auto_compact=False, segment_size=SEGMENT_SIZE) as db:
        for i in range(mib * (1 << 20) // VALUE_SIZE):
            db.put(b"key%09d" % i, value)
        stats = db.stats()
    return {
        "bytes": stats["disk_bytes"],
        "segments": stats["segment_count"],
        "build_seconds": time.perf_counter() - started,
    }


def checkpoints(path: str, work: str, rounds: int) -> dict[str, Any]:
    """Checkpoint and copytree timings, alternating, each into a fresh directory."""
    taken: list[float] = []
    copied: list[float] = []
    report: dict[str, Any] = {}
    for n in range(rounds):
        with Engine.open(path, sync="none", auto_compact=False, segment_size=SEGMENT_SIZE) as db:
            dest = os.path.join(work, f"checkpoint{n}")
            started = time.perf_counter()
            report = db.checkpoint(dest).as_dict()
            taken.append(time.perf_counter() - started)
        shutil.rmtree(dest)
        dest = os.path.join(work, f"copy{n}")
        started = time.perf_counter()
        shutil.copytree(path, dest)
        copied.append(time.perf_counter() - started)
        shutil.rmtree(dest)
    best, median = min(taken), statistics.median(taken)
    return {
        "checkpoint_seconds": {"best": best, "median": median, "all": taken},
        "copytree_seconds": {"best": min(copied), "median": statistics.median(copied)},
        "copytree_over_checkpoint": statistics.median(copied) / median,
        "last_report": report,
    }


def writer_latencies(path: str, work: str, threads: int, seconds: float) -> dict[str, Any]:
    """p50/p99 put latency of durable writers, in windows with and without checkpoints."""
    samples: dict[bool, list[float]] = {False: [], True: []}
    checkpointing = threading.Event()
    stop = threading.Event()
    taken = 0
    with Engine.open(path, sync="always", auto_compact=False, segment_size=SEGMENT_SIZE) as db:

        def write(writer: int) -> None:
            value = b"v" * 100
            i = 0
            while not stop.is_set():
                started = time.perf_counter()
                db.put(b"w%02d-%09d" % (writer, i), value)
                samples[checkpointing.is_set()].append(time.perf_counter() - started)
                i += 1

        workers = [threading.Thread(target=write, args=(w,)) for w in range(threads)]
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + seconds
        window = 0
        while time.monotonic() < deadline:
            window += 1
            if window % 2:
                checkpointing.set()
            else:
                checkpointing.clear()
            until = time.monotonic() + 1.0
            while time.monotonic() < until:
                if checkpointing.is_set():
                    dest = os.path.join(work, f"live{taken}")
                    db.checkpoint(dest)
                    taken += 1
                    shutil.rmtree(dest)
                time.sleep(0.1)
        stop.set()
        for worker in workers:
            worker.join()

    def at(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    result: dict[str, Any] = {"threads": threads, "checkpoints": taken}
    for during, name in ((False, "without"), (True, "with")):
        values = samples[during]
        result[name] = {"puts": len(values), "p50_ms": at(values, 0.5), "p99_ms": at(values, 0.99)}
    result["p99_ratio"] = result["with"]["p99_ms"] / result["without"]["p99_ms"]
    return result


def incremental(path: str, backups_dir: str, changed_mib: int) -> dict[str, Any]:
    """Two backups with ``changed_mib`` MiB written between them: bytes copied against changed."""
    backups = BackupSet(backups_dir)
    with Engine.open(path, sync="none", auto_compact=False, segment_size=SEGMENT_SIZE) as db:
        first = backups.back_up(db)
        before = db.stats()["disk_bytes"]
        value = os.urandom(VALUE_SIZE)
        for i in range(changed_mib * (1 << 20) // VALUE_SIZE):
            db.put(b"new%09d" % i, value)
        changed = db.stats()["disk_bytes"] - before
        second = backups.back_up(db)
    shutil.rmtree(backups_dir)
    return {
        "first": {k: v for k, v in first.as_dict().items() if k != "backup"},
        "second": {k: v for k, v in second.as_dict().items() if k != "backup"},
        "bytes_changed": changed,
        "copied_over_changed": second.bytes_copied / changed if changed else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mib", type=int, default=1024, help="store size (MiB)")
    parser.add_argument("--dir", default=None, help="where the store goes (a temp dir in it)")
    parser.add_argument("--other", default="/dev/shm", help="another file system for backups")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--changed", type=int, default=32, help="MiB written between backups")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="seglog-bench-checkpoint-", dir=args.dir)
    try:
        store = os.path.join(work, "store")
        figures: dict[str, Any] = {"store": build(store, args.mib)}
        figures["checkpoint"] = checkpoints(store, work, args.rounds)
        figures["writers"] = writer_latencies(store, work, args.threads, args.seconds)
        figures["backup_same_fs"] = incremental(store, os.path.join(work, "b"), args.changed)
        if os.path.isdir(args.other):
            other = tempfile.mkdtemp(prefix="seglog-bench-backups-", dir=args.other)
            try:
                figures["backup_other_fs"] = incremental(store, other, args.changed)
            finally:
                shutil.rmtree(other, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    fast = figures["checkpoint"]["checkpoint_seconds"]["median"] < MAX_CHECKPOINT_SECONDS
    figures["checks"] = {"checkpoint_under_a_second": fast}
    if args.json:
        print(json.dumps(figures, indent=1))
    else:
        print(report(figures))
    return 0 if fast else 1


def report(figures: dict[str, Any]) -> str:
    store, ck, wr = figures["store"], figures["checkpoint"], figures["writers"]
    last = ck["last_report"]
    lines = [
        f"store: {store['bytes'] / (1 << 20):.0f} MiB in {store['segments']} segments "
        f"(built in {store['build_seconds']:.1f} s)",
        f"checkpoint: median {ck['checkpoint_seconds']['median'] * 1000:.1f} ms, best "
        f"{ck['checkpoint_seconds']['best'] * 1000:.1f} ms ({last['files_linked']} files linked, "
        f"{last['bytes_copied'] / (1 << 20):.1f} MiB copied); copytree median "
        f"{ck['copytree_seconds']['median']:.2f} s: {ck['copytree_over_checkpoint']:.0f}x slower",
        f"{wr['threads']} durable writers: p50 {wr['without']['p50_ms']:.2f} ms, p99 "
        f"{wr['without']['p99_ms']:.2f} ms without checkpoints; p50 {wr['with']['p50_ms']:.2f} ms, "
        f"p99 {wr['with']['p99_ms']:.2f} ms with one every 100 ms ({wr['checkpoints']} taken): "
        f"p99 x{wr['p99_ratio']:.2f}",
    ]
    for name in ("backup_same_fs", "backup_other_fs"):
        if name in figures:
            b = figures[name]
            read = b["second"]["bytes_read"] / (1 << 20)
            lines.append(
                f"{name}: first copied {b['first']['bytes_copied'] / (1 << 20):.1f} MiB; after "
                f"{b['bytes_changed'] / (1 << 20):.1f} MiB changed the second copied "
                f"{b['second']['bytes_copied'] / (1 << 20):.1f} MiB, linked "
                f"{b['second']['files_linked']} files, read {read:.0f} MiB for CRCs "
                f"(copied/changed {b['copied_over_changed']:.2f})"
            )
    lines.append(f"checks: {figures['checks']}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
