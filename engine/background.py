"""Background threads that poll their owner without keeping it alive.

The ``sync="periodic"`` thread and the automatic compaction thread each run a
step every interval. They hold their owner weakly and take a strong reference
only for the length of a step, so an engine dropped without ``close()`` (a
forgotten handle, a store "crashed" by the simulator in a test) is collected
and its threads end, instead of polling forever and keeping it alive.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import TypeVar

Owner = TypeVar("Owner")


def start_polling(
    owner: Owner,
    step: Callable[[Owner], bool],
    stopping: threading.Event,
    interval: float,
    name: str,
) -> threading.Thread:
    """Run ``step(owner)`` every ``interval`` seconds in a daemon thread.

    The thread ends when ``stopping`` is set, when ``step`` returns False, or
    when ``owner`` has been collected.
    """
    thread = threading.Thread(
        target=_poll,
        args=(weakref.ref(owner), step, stopping, interval),
        name=name,
        daemon=True,
    )
    thread.start()
    return thread


def _poll(
    ref: weakref.ref[Owner],
    step: Callable[[Owner], bool],
    stopping: threading.Event,
    interval: float,
) -> None:
    while not stopping.wait(interval):
        owner = ref()
        if owner is None or not step(owner):
            return
        del owner
