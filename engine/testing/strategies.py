"""Hypothesis strategies for crash testing (needs Hypothesis: ``pip install 'seglog[testing]'``).

``actions()`` draws seglog workload actions over a small key set, so that
operations collide; ``crash_state(sim)`` draws one of the states a crash at
this moment could leave, shrinking towards a plain SIGKILL; ``profile()``
reads ``SEGLOG_CRASH_PROFILE`` (``ci`` or ``deep``) for test settings.

>>> from hypothesis import given
>>> @given(actions())
... def test_any_action(action): ...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Final

try:
    from hypothesis import HealthCheck, note, settings
    from hypothesis import strategies as st
except ModuleNotFoundError as missing:  # the rest of engine.testing works without it
    if missing.name != "hypothesis":
        raise
    raise ImportError(
        "engine.testing.strategies needs Hypothesis, which the 'testing' extra installs: "
        "pip install 'seglog[testing]'"
    ) from missing

from engine.testing.actions import Action
from engine.testing.fuzzing import Recipe
from engine.testing.simulator import CRASH_KINDS, CrashSimulator, CrashState

KEYS: Final = (b"a", b"b", b"c")

#: Settings per profile: examples, steps per example.
PROFILES: Final = {"ci": (300, 40), "deep": (5000, 100)}


def profile() -> str:
    """The crash-test profile named by ``SEGLOG_CRASH_PROFILE`` (default ``ci``)."""
    name = os.environ.get("SEGLOG_CRASH_PROFILE", "ci")
    return name if name in PROFILES else "ci"


def crash_settings() -> settings:
    """Hypothesis settings for a state machine under the current profile."""
    examples, steps = PROFILES[profile()]
    return settings(
        max_examples=examples,
        stateful_step_count=steps,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def actions(keys: Sequence[bytes] = KEYS, *, compact: bool = True) -> st.SearchStrategy[Action]:
    """One workload action: writes on ``keys``, batches, sync, clock advance, reopen, compact."""
    key = st.sampled_from(list(keys))
    writes = st.one_of(
        st.builds(Action, st.sampled_from(["put", "put_ttl", "delete"]), key),
        st.builds(
            lambda items: Action("batch", items=tuple(items)),
            st.lists(st.tuples(key, st.booleans()), min_size=1, max_size=4),
        ),
    )
    others = ["sync", "advance", "reopen"]
    if compact:
        others.append("compact")
    return st.one_of(writes, st.sampled_from(others).map(Action))


class DrawnRecipe(Recipe):
    """A ``Recipe`` whose decisions Hypothesis draws (and shrinks)."""

    def __init__(self, data: st.DataObject) -> None:
        super().__init__()
        self._draw = data

    def below(self, n: int) -> int:
        return self._draw.draw(st.integers(0, n - 1)) if n > 1 else 0


def drawn_recipe(data: st.DataObject) -> Recipe:
    """Decisions for the structure-aware fuzz properties, drawn from ``@given(st.data())``."""
    return DrawnRecipe(data)


def crash_kinds() -> st.SearchStrategy[str]:
    """A crash kind, shrinking towards a process crash."""
    return st.sampled_from(list(CRASH_KINDS))


def crash_state(sim: CrashSimulator, data: st.DataObject) -> CrashState:
    """Draw one state a crash of ``sim`` at this moment could leave."""
    kind = data.draw(crash_kinds(), label="crash kind")
    states = sim.crash_states((kind,)) or sim.crash_states(("process",))
    index = data.draw(st.integers(0, len(states) - 1), label=f"which of {len(states)} states")
    note(f"crash: {states[index]!r}")
    return states[index]
