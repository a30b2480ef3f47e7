"""The example from docs/CRASH_TESTING.md, kept honest: it runs here exactly as printed there."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from engine import Engine
from engine.testing import CrashSimulator, SimulatedCrash


class Counters:
    """The application: named counters kept in seglog."""

    def __init__(self, db: Engine) -> None:
        self.db = db

    def increment(self, name: bytes) -> int:
        value = int(self.db.get(name) or b"0") + 1
        self.db.put(name, b"%d" % value)
        return value

    def value(self, name: bytes) -> int:
        return int(self.db.get(name) or b"0")


@settings(max_examples=50, deadline=None)
@given(
    names=st.lists(st.sampled_from([b"x", b"y"]), max_size=20),
    crash_at=st.integers(min_value=0, max_value=60),
    data=st.data(),
)
def test_no_acknowledged_increment_is_lost(
    names: list[bytes], crash_at: int, data: st.DataObject
) -> None:
    sim = CrashSimulator()
    app = Counters(Engine.open("/app", fs=sim.fs, sync="always"))
    acknowledged: dict[bytes, int] = {}
    sim.arm(crash_at)  # the machine stops at the crash_at-th file operation from now
    try:
        for name in names:
            app.increment(name)
            acknowledged[name] = acknowledged.get(name, 0) + 1
    except SimulatedCrash:
        pass
    # Any state the crash could leave: SIGKILL, power cut, torn or lost writes...
    state = data.draw(st.sampled_from(sim.crash_states()))
    recovered = Counters(Engine.open("/app", fs=state.filesystem(), sync="always"))
    for name, count in acknowledged.items():
        # Every acknowledged increment survived; the one in flight may have.
        assert count <= recovered.value(name) <= count + 1
    recovered.db.close()
