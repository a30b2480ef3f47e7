"""Start several threads at the same instant and time them as one run."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable


def run_together(work: Callable[[int, int], int], threads: int) -> tuple[int, float]:
    """Run ``work(t, start_ns)`` on ``threads`` threads released together.

    Threads are started first and wait on a barrier, so thread start-up is not
    timed; ``start_ns`` is the ``perf_counter_ns`` at the release, for deadlines
    and schedules. Returns the sum of what the calls returned (operations done)
    and the seconds from the release to the end of the last one; re-raises the
    first exception a thread raised. One "thread" is the calling thread itself,
    as a single-threaded user's would be (some stores, sqlite3 among them, refuse
    objects from the thread that opened them).
    """
    if threads == 1:
        gc.collect()
        began = time.perf_counter_ns()
        count = work(0, began)
        return count, (time.perf_counter_ns() - began) / 1e9
    barrier = threading.Barrier(threads + 1)
    start = [0]
    done = [0] * threads
    failures: list[BaseException] = []

    def run(t: int) -> None:
        try:
            barrier.wait()
            done[t] = work(t, start[0])
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    gc.collect()
    start[0] = time.perf_counter_ns()
    barrier.wait()
    for w in workers:
        w.join()
    seconds = (time.perf_counter_ns() - start[0]) / 1e9
    if failures:
        raise failures[0]
    return sum(done), seconds
