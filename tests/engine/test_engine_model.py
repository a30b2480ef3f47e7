"""The engine against a dict model: puts, deletes, batches, scans, expiry, reopen.

Small key sets make operations collide; unique values make any wrong value
attributable to the write that produced it.
"""

from __future__ import annotations

import itertools
import shutil
import tempfile

from conftest import FakeClock
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import Engine
from engine.fs import FileSystem
from engine.testing import MemoryFileSystem

KEYS = st.sampled_from([b"a", b"ab", b"abc", b"b", b"ba", b"\x00", b"\xff"])
PREFIXES = st.sampled_from([b"", b"a", b"ab", b"b", b"\xff", b"z"])


class EngineModel(RuleBasedStateMachine):
    """Every step compares the engine's answer with a dict of (value, expiry)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.values = itertools.count()
        self.model: dict[bytes, tuple[bytes, float | None]] = {}
        self.fs, self.path = self.make_fs()
        self.db = self.open()

    def make_fs(self) -> tuple[FileSystem | None, str]:
        return MemoryFileSystem(), "/store"

    def open(self) -> Engine:
        return Engine.open(self.path, fs=self.fs, clock=self.clock, segment_size=300)

    def live(self) -> dict[bytes, bytes]:
        now = self.clock.now
        return {k: v for k, (v, exp) in self.model.items() if exp is None or exp > now}

    def value(self) -> bytes:
        return b"value-%d" % next(self.values)

    @rule(key=KEYS)
    def put(self, key: bytes) -> None:
        value = self.value()
        self.db.put(key, value)
        self.model[key] = (value, None)

    @rule(key=KEYS, ttl=st.sampled_from([-1.0, 0.5, 5.0, 50.0]))
    def put_with_ttl(self, key: bytes, ttl: float) -> None:
        value = self.value()
        self.db.put(key, value, ttl=ttl)
        self.model[key] = (value, self.clock.now + ttl)

    @rule(key=KEYS)
    def delete(self, key: bytes) -> None:
        self.db.delete(key)
        self.model.pop(key, None)

    @rule(ops=st.lists(st.tuples(KEYS, st.booleans()), min_size=1, max_size=4), fail=st.booleans())
    def batch(self, ops: list[tuple[bytes, bool]], fail: bool) -> None:
        staged = dict(self.model)
        try:
            with self.db.batch() as batch:
                for key, is_put in ops:
                    if is_put:
                        value = self.value()
                        batch.put(key, value)
                        staged[key] = (value, None)
                    else:
                        batch.delete(key)
                        staged.pop(key, None)
                if fail:
                    raise KeyboardInterrupt
        except KeyboardInterrupt:
            return
        self.model = staged

    @rule(key=KEYS)
    def get(self, key: bytes) -> None:
        assert self.db.get(key) == self.live().get(key)
        assert (key in self.db) == (key in self.live())

    @rule(prefix=PREFIXES, reverse=st.booleans())
    def scan(self, prefix: bytes, reverse: bool) -> None:
        expected = sorted(
            ((k, v) for k, v in self.live().items() if k.startswith(prefix)), reverse=reverse
        )
        assert list(self.db.scan(prefix=prefix, reverse=reverse)) == expected

    @rule(start=KEYS, end=KEYS)
    def scan_range(self, start: bytes, end: bytes) -> None:
        expected = sorted(k for k in self.live() if start <= k < end)
        assert list(self.db.scan_keys(start=start, end=end)) == expected

    @rule(seconds=st.sampled_from([0.5, 1.0, 10.0]))
    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def reopen(self) -> None:
        self.db.close()
        self.db = self.open()

    @precondition(lambda self: isinstance(self.fs, MemoryFileSystem))
    @rule()
    def crash_process(self) -> None:
        """A process crash keeps everything handed to the OS (here: every write)."""
        assert isinstance(self.fs, MemoryFileSystem)
        self.fs = self.fs.after_process_crash()
        self.db = self.open()

    @invariant()
    def length_matches(self) -> None:
        assert len(self.db) == len(self.live())

    def teardown(self) -> None:
        self.db.close()


class EngineOnDisk(EngineModel):
    """The same model on the real file system, through mmap and flock."""

    def make_fs(self) -> tuple[FileSystem | None, str]:
        self.tmp = tempfile.mkdtemp(prefix="seglog-model-")
        return None, self.tmp

    def teardown(self) -> None:
        super().teardown()
        shutil.rmtree(self.tmp, ignore_errors=True)


TestEngineModel = EngineModel.TestCase
TestEngineModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestEngineOnDisk = EngineOnDisk.TestCase
TestEngineOnDisk.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
