"""Compare the micro-benchmarks of two commits: ``python -m benchmarks.compare BASE [HEAD]``.

Each commit is checked out in a temporary ``git worktree`` (your working tree is
not touched) and the micro-benchmarks of *this* checkout run against that
commit's code (``PYTHONPATH`` points at the worktree), so both sides run the very
same benchmark code. Runs alternate BASE, HEAD, BASE, HEAD, ... for ``--rounds``
rounds; per benchmark the lowest median over the rounds is kept. HEAD defaults to
the working tree as it is, uncommitted changes included.

The raw pytest-benchmark JSON files are kept in ``--out`` so that
``pytest-benchmark compare`` can show them in its own formats too.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MICRO = ROOT / "benchmarks" / "micro"
WORKTREE = "WORKTREE"


def _git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()


def run_micro(code_dir: Path, json_path: Path, extra: list[str]) -> None:
    """Run the micro-benchmarks against the code in ``code_dir``; write their JSON."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(code_dir), env.get("PYTHONPATH")) if p)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(MICRO),
        "--benchmark-only",
        f"--benchmark-json={json_path}",
        "-p",
        "no:cacheprovider",
        "-q",
        *extra,
    ]
    subprocess.run(command, cwd=code_dir, env=env, check=True)


def medians(paths: list[Path]) -> dict[str, float]:
    """Per benchmark, the lowest median (seconds) over the given JSON files."""
    best: dict[str, float] = {}
    for path in paths:
        for bench in json.loads(path.read_text())["benchmarks"]:
            name, median = bench["fullname"].split("::")[-1], bench["stats"]["median"]
            best[name] = min(median, best.get(name, median))
    return best


def report(base: dict[str, float], head: dict[str, float], threshold: float) -> list[str]:
    lines = [f"{'benchmark':40} {'base':>12} {'head':>12} {'head/base':>10}"]
    for name in sorted(set(base) | set(head)):
        b, h = base.get(name), head.get(name)
        if b is None or h is None:
            lines.append(
                f"{name:40} {'-' if b is None else f'{b * 1e6:10.1f}us':>12} "
                f"{'-' if h is None else f'{h * 1e6:10.1f}us':>12}"
            )
            continue
        ratio = h / b
        flag = ""
        if ratio > 1 + threshold:
            flag = "  slower"
        elif ratio < 1 - threshold:
            flag = "  faster"
        lines.append(f"{name:40} {b * 1e6:10.1f}us {h * 1e6:10.1f}us {ratio:9.2f}x{flag}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("base", help="a commit, branch or tag")
    parser.add_argument(
        "head",
        nargs="?",
        default=WORKTREE,
        help="a commit, branch or tag (default: the working tree as it is)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds (default 2)")
    parser.add_argument("-k", dest="select", help="only benchmarks matching this pytest -k")
    parser.add_argument(
        "--max-time",
        type=float,
        default=0.5,
        help="pytest-benchmark --benchmark-max-time per benchmark (default 0.5)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=0.10,
        help="flag changes beyond this fraction (default 0.10)",
    )
    parser.add_argument("--out", default="bench-results/micro", help="where JSON files go")
    args = parser.parse_args(argv)

    extra = [f"--benchmark-max-time={args.max_time}"]
    if args.select:
        extra += ["-k", args.select]
    # Absolute: the benchmarks run with each checkout as their working directory.
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    sides = {"base": args.base, "head": args.head}
    files: dict[str, list[Path]] = {"base": [], "head": []}
    with tempfile.TemporaryDirectory(prefix="seglog-compare-") as tmp:
        dirs: dict[str, Path] = {}
        try:
            for side, rev in sides.items():
                if rev == WORKTREE:
                    dirs[side] = ROOT
                    continue
                sha = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
                dirs[side] = Path(tmp) / side
                _git("worktree", "add", "--detach", str(dirs[side]), sha)
            for r in range(args.rounds):
                for side in ("base", "head"):
                    path = out / f"{side}-r{r + 1}.json"
                    print(f"round {r + 1}/{args.rounds}: {side} = {sides[side]}", flush=True)
                    run_micro(dirs[side], path, extra)
                    files[side].append(path)
        finally:
            for path in dirs.values():
                if path != ROOT:
                    subprocess.run(
                        ["git", "worktree", "remove", "--force", str(path)],
                        cwd=ROOT,
                        check=False,
                        capture_output=True,
                    )
    print()
    print(f"base = {args.base}, head = {args.head}; lowest median of {args.rounds} round(s)")
    for line in report(medians(files["base"]), medians(files["head"]), args.threshold):
        print(line)
    print(
        f"\nraw JSON in {out}; also: pytest-benchmark compare {out}/base-r1.json "
        f"{out}/head-r1.json --columns=min,median,mean"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
