"""CPU time per operation and bytes per key of two checkouts, for a change to the record format.

100k random 16-byte keys and 100-byte values: puts, random gets, scans, batch
puts, deletes, reopen with and without log hints, and the bytes on disk. Each
checkout runs in its own process (``PYTHONPATH`` points at it), in the order
old, new, new, old per round, so that drift on a shared machine hits both alike;
the table gives the minimum and the median per side.

    .venv/bin/python benchmarks/bench_format.py --old /path/to/old/checkout [--rounds 3]

(``git worktree add --detach /tmp/old <commit>`` makes an old checkout.)
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

KEYS = 100_000
VALUE = b"v" * 100
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def measure() -> dict[str, float]:
    """One run in this process, with whichever ``engine`` is on the path."""
    from engine import Engine

    rng = random.Random(7)
    keys = [rng.randbytes(16) for _ in range(KEYS)]
    reads = keys[:]
    rng.shuffle(reads)
    cpu = time.process_time
    out: dict[str, float] = {}
    directory = tempfile.mkdtemp(prefix="bench-format-")
    try:
        with Engine.open(directory, auto_compact=False) as db:
            start = cpu()
            for key in keys:
                db.put(key, VALUE)
            out["put µs"] = (cpu() - start) / KEYS * 1e6
            start = cpu()
            for key in reads:
                db.get(key)
            out["get µs"] = (cpu() - start) / KEYS * 1e6
            list(db.scan_keys(prefix=b"\x00"))  # sort the index outside the timing
            start, seen = cpu(), 0
            for first in range(256):
                seen += sum(1 for _ in db.scan(prefix=bytes([first])))
            out["scan µs/key"] = (cpu() - start) / seen * 1e6
            start = cpu()
            for i in range(0, KEYS, 100):
                with db.batch() as batch:
                    for key in keys[i : i + 100]:
                        batch.put(key, VALUE)
            out["batch put µs"] = (cpu() - start) / KEYS * 1e6
            start = cpu()
            for key in reads[: KEYS // 2]:
                db.delete(key)
            out["delete µs"] = (cpu() - start) / (KEYS // 2) * 1e6
        shutil.rmtree(directory)
        directory = tempfile.mkdtemp(prefix="bench-format-")
        with Engine.open(directory, auto_compact=False) as db:
            for key in keys:
                db.put(key, VALUE)
        out["segment B/key"] = _bytes(directory, "*.seg") / KEYS
        out["all files B/key"] = _bytes(directory, "*") / KEYS
        start = cpu()
        Engine.open(directory, auto_compact=False).close()
        out["reopen, log hints ms"] = (cpu() - start) * 1e3
        for hint in glob.glob(os.path.join(directory, "*.shint")):
            os.remove(hint)
        start = cpu()
        db = Engine.open(directory, auto_compact=False)
        out["reopen, scan ms"] = (cpu() - start) * 1e3
        db.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return out


def _bytes(directory: str, pattern: str) -> int:
    return sum(os.path.getsize(p) for p in glob.glob(os.path.join(directory, pattern)))


def _run(checkout: str) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": checkout}
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one"],
        env=env,
        cwd=checkout,
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, float] = json.loads(done.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", help="the checkout to compare this one against")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure()))
        return
    if not args.old:
        parser.error("--old is required")
    runs: dict[str, list[dict[str, float]]] = {"old": [], "new": []}
    for _ in range(args.rounds):
        for side in ("old", "new", "new", "old"):
            runs[side].append(_run(args.old if side == "old" else ROOT))
    print(f"{KEYS:,} keys, {args.rounds} rounds; load {os.getloadavg()[0]:.1f}")
    print("| measure | old min / median | new min / median | min ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name in runs["old"][0]:
        old = [run[name] for run in runs["old"]]
        new = [run[name] for run in runs["new"]]
        print(
            f"| {name} | {min(old):.2f} / {statistics.median(old):.2f} "
            f"| {min(new):.2f} / {statistics.median(new):.2f} | {min(new) / min(old):.2f}x |"
        )


if __name__ == "__main__":
    main()
