"""docs/RECIPES.md: every recipe's ``python`` blocks, run as one program, must succeed.

The recipes check themselves with ``assert``; a recipe that drifts from the
code fails here. Each runs in a fresh working directory, in a subprocess. A
recipe that reads ``DATABASE_URL`` gets an empty database on the tests'
throwaway PostgreSQL server (root ``conftest.py``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "docs" / "RECIPES.md"
BLOCK = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE)


def recipes() -> dict[str, str]:
    """Each ``## `` heading's ``python`` blocks, joined into one program."""
    found: dict[str, str] = {}
    for section in RECIPES.read_text(encoding="utf-8").split("\n## ")[1:]:
        title, _, body = section.partition("\n")
        blocks = BLOCK.findall(body)
        if blocks:
            found[title.strip()] = "\n".join(blocks)
    return found


def test_every_recipe_has_code() -> None:
    titles = recipes()
    for expected in ("asyncio web handler", "shelve", "cache with TTLs", "seglog copy"):
        assert any(expected in title for title in titles), (expected, list(titles))


@pytest.mark.parametrize("title", sorted(recipes()))
def test_recipe_runs(title: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    code = recipes()[title]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if "DATABASE_URL" in code:
        server = request.getfixturevalue("postgres_server")
        server.create_database("recipes")
        env["DATABASE_URL"] = server.url("recipes")
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
