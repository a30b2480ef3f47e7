"""The Hypothesis tier: long histories, crashes now and inside operations, checked each time.

A ``RuleBasedStateMachine`` runs seglog actions on the crash simulator. Two
rules crash: ``crash_now`` picks one of the states a crash between two calls
could leave, ``crash_inside`` arms the simulator to stop the machine at the
n-th file operation of the next action. Every crash is followed by a reopen,
which must not raise and must show the state after a legal prefix of the
acknowledged actions; the run then continues on the recovered store, so later
crashes land on stores that have already been through recovery. Failures
shrink to short programs; pin each one in test_regressions.py.

``SEGLOG_CRASH_PROFILE=deep`` runs many more and longer examples.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from engine.options import SyncMode
from engine.testing import (
    Action,
    CrashSimulator,
    CrashState,
    Driver,
    History,
    ManualClock,
    SimulatedCrash,
    quiet_logs,
    read_store,
    visible,
)
from engine.testing.strategies import KEYS, actions, crash_settings, crash_state, profile

#: The deep profile runs for as long as it takes.
pytestmark = pytest.mark.timeout(0 if profile() == "deep" else 600)


class CrashMachine(RuleBasedStateMachine):
    """seglog under crashes, against the prefix oracle."""

    def __init__(self) -> None:
        super().__init__()
        self.sim = CrashSimulator()
        self.driver: Driver | None = None
        self.crashes = 0

    @initialize(
        sync=st.sampled_from(["always", "none"]), segment_size=st.sampled_from([128, 200, 4096])
    )
    def start(self, sync: SyncMode, segment_size: int) -> None:
        self.driver = Driver(
            self.sim, sync=sync, history=History(), clock=ManualClock(), segment_size=segment_size
        )
        self.driver.open()

    @property
    def d(self) -> Driver:
        assert self.driver is not None
        return self.driver

    @rule(action=actions())
    def act(self, action: Action) -> None:
        self.d.run(action)

    @rule(data=st.data())
    def crash_now(self, data: st.DataObject) -> None:
        self.recover(crash_state(self.sim, data))

    @rule(action=actions(), after=st.integers(min_value=0, max_value=30), data=st.data())
    def crash_inside(self, action: Action, after: int, data: st.DataObject) -> None:
        """Stop the machine at the ``after``-th file operation of ``action``."""
        self.sim.arm(after)
        try:
            self.d.run(action)
        except SimulatedCrash:
            self.recover(crash_state(self.sim, data))
        finally:
            self.sim.disarm()

    def recover(self, state: CrashState) -> None:
        driver, history = self.d, self.d.history
        bounds = history.bounds(driver.clock.now, power_loss=state.is_power_loss)
        self.crashes += 1
        driver.db = None  # the crashed process is gone; its engine object is abandoned
        fs = self.sim.restart(state)
        with quiet_logs():
            db = driver.db = driver.open_engine(fs)
        store = read_store(db, KEYS)
        matches = history.matching(store, bounds)
        assert matches, f"after {state}: " + "; ".join(history.check(store, bounds))
        history.settle(matches[-1])
        # Open makes what it recovered durable (docs/DURABILITY.md).
        history.durable = history.acked

    @invariant()
    def store_matches_model(self) -> None:
        if self.driver is None or self.driver.db is None:
            return
        expected = visible(self.d.history.current, self.d.clock.now)
        assert read_store(self.driver.db, KEYS) == expected


TestCrashMachine = CrashMachine.TestCase
TestCrashMachine.settings = crash_settings()
