"""A clock the test moves by hand, so expiry never depends on real time."""

from __future__ import annotations


class ManualClock:
    """Seconds since the epoch, advanced only by ``advance``; pass it as ``Engine.open(clock=...)``.

    >>> clock = ManualClock(100.0)
    >>> clock.advance(5)
    >>> clock()
    105.0
    """

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = float(now)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def __repr__(self) -> str:
        return f"ManualClock({self.now!r})"
