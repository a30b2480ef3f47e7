"""The wheel a user installs gives a working ``seglog`` command and engine.

Builds the wheel from a copy of the sources (so the build leaves nothing in
the checkout), installs it into a fresh virtual environment with only its
declared dependencies (from the configured index, as a user would), and
runs ``seglog stats`` and ``seglog verify`` there on a store that the
installed engine wrote. A dependency the command needs but the package does
not declare (``rich`` was one) fails here with ``ModuleNotFoundError``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: What the wheel is built from (pyproject's packages and its readme).
SOURCES = ("pyproject.toml", "README.md", "engine", "store_api", "benchmarks", "seglog_cli")

pytestmark = pytest.mark.packaging

WRITE_STORE = """
import sys
from engine import Engine
with Engine.open(sys.argv[1], sync="always") as db:
    for i in range(100):
        db.put(b"key%03d" % i, b"value %d" % i)
    db.delete(b"key007")
"""

WITHOUT_HYPOTHESIS = """
import engine.testing
try:
    import engine.testing.strategies
except ImportError as exc:
    print(exc)
"""


def run(*args: str | Path, cwd: Path) -> str:
    """Run a command outside the checkout, with no PYTHONPATH leaking the sources in."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin directory of a fresh venv holding the built wheel and its dependencies."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    skip = shutil.ignore_patterns("__pycache__")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=skip)
        else:
            shutil.copy2(ROOT / name, source / name)
    wheels = work / "wheels"
    # Offline and quick: the dev environment's setuptools, no isolated build env.
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
            "--wheel-dir", wheels, f"{source}/", cwd=work)  # fmt: skip
    (wheel,) = wheels.glob("seglog-*.whl")
    env_dir = work / "venv"
    venv.create(env_dir)  # no pip of its own: this pip installs into it, much faster
    bin_dir = env_dir / "bin"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", bin_dir / "python"]
    run(*pip, "install", "--quiet", "--disable-pip-version-check", wheel, cwd=work)
    return bin_dir


def test_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    where = run(installed / "python", "-c", "import engine; print(engine.__file__)", cwd=tmp_path)
    assert Path(where.strip()).is_relative_to(installed.parent)


def test_seglog_stats_and_verify_work_from_a_plain_install(installed: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    run(installed / "python", "-c", WRITE_STORE, store, cwd=tmp_path)
    stats = json.loads(run(installed / "seglog", "stats", store, "--json", cwd=tmp_path))
    assert stats["keys"] == 99
    # Without --json: the rich tables the command draws.
    assert "99" in run(installed / "seglog", "stats", store, cwd=tmp_path)
    report = json.loads(run(installed / "seglog", "verify", store, "--json", cwd=tmp_path))
    assert report["healthy"] is True and report["records"] == 101
    run(installed / "seglog", "verify", store, "--no-progress", cwd=tmp_path)


def test_testing_extra_is_named_when_hypothesis_is_missing(installed: Path, tmp_path: Path) -> None:
    message = run(installed / "python", "-c", WITHOUT_HYPOTHESIS, cwd=tmp_path)
    assert "pip install 'seglog[testing]'" in message
