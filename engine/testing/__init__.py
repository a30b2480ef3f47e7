"""Crash testing for seglog, and for applications that embed it.

The pieces (see docs/CRASH_TESTING.md for a guide):

* ``MemoryFileSystem``: files in memory, with the durable state a crash would
  leave and a journal (``Op``) of every mutating operation; pass it as
  ``Engine.open(..., fs=...)`` to run the engine without a disk.
* ``CrashSimulator``: a ``MemoryFileSystem`` whose journal of file operations
  is turned into every disk state a crash could leave (SIGKILL and power loss,
  torn and reordered writes, lost directory entries), each a ``CrashState``
  whose ``filesystem()`` the next "process" opens.
* ``History``: the oracle. It records what each acknowledged operation left and
  checks that recovered contents equal the state after a legal prefix.
* ``Action``, ``Driver``, ``Checker``: seglog's own workloads, crashed at every
  file operation and checked (the exhaustive tier of ``make crashtest``).
* ``CheckpointProbe`` (in ``engine.testing.checkpoints``): a checkpoint at
  every point of those workloads, each crashed at every one of its own file
  operations (docs/DURABILITY.md, "Checkpoints and backups").
* ``MutantFileSystem`` and ``MUTANTS`` (in ``engine.testing.mutants``): the
  engine with one fsync, directory fsync or ordering step removed, to show the
  checks catch it.
* ``engine.testing.strategies``: Hypothesis strategies (needs ``hypothesis``).

>>> from engine import Engine
>>> from engine.testing import CrashSimulator
>>> sim = CrashSimulator()
>>> db = Engine.open("/db", fs=sim.fs, sync="always")
>>> db.put(b"k", b"v")
>>> all(
...     Engine.open("/db", fs=state.filesystem()).get(b"k") == b"v"
...     for state in sim.crash_states()
... )
True
"""

from engine.testing.actions import Action, quiet_logs, read_store, vocabulary, workloads
from engine.testing.checker import Checker, Figures, Violation
from engine.testing.clock import ManualClock
from engine.testing.driver import Driver
from engine.testing.memfs import Inode, MemoryFileSystem, Op
from engine.testing.oracle import Bounds, History, Model, visible
from engine.testing.simulator import (
    CRASH_KINDS,
    POWER_KINDS,
    CrashSimulator,
    CrashState,
    Limits,
    SimulatedCrash,
    crash_states_of,
)
from engine.testing.tracker import DiskImage, Tracker

__all__ = [
    "CRASH_KINDS",
    "POWER_KINDS",
    "Action",
    "Bounds",
    "Checker",
    "CrashSimulator",
    "CrashState",
    "DiskImage",
    "Driver",
    "Figures",
    "History",
    "Inode",
    "Limits",
    "ManualClock",
    "MemoryFileSystem",
    "Model",
    "Op",
    "SimulatedCrash",
    "Tracker",
    "Violation",
    "crash_states_of",
    "quiet_logs",
    "read_store",
    "visible",
    "vocabulary",
    "workloads",
]
