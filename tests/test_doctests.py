"""The examples in the packages' docstrings run, so the docs cannot drift from the code.

``doctest`` over every module of the packages that has an example, rather than
pytest's ``--doctest-modules``, which would also collect the ``conftest.py``
files of the test directories as modules.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "store_api", "seglog_cli", "benchmarks")


def _modules_with_examples() -> list[str]:
    names = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "micro" in path.parts or ">>> " not in path.read_text():
                continue
            parts = path.relative_to(ROOT).with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


EXAMPLES = _modules_with_examples()


def test_the_examples_are_found() -> None:
    assert {"engine", "store_api", "engine.dbm", "store_api.aio"} <= set(EXAMPLES)
    assert all(pkgutil.resolve_name(name) for name in EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.attempted > 0, f"{name} has '>>> ' but doctest found no example"
    assert result.failed == 0
