"""The crash oracle: which store contents a crash at a given moment may leave.

A ``History`` records the acknowledged operations of a key-value workload as
the model state after each one, and how many of them are known durable
against a power cut. After a crash, the recovered contents must equal the
model state after *some prefix* of the acknowledged operations:

* long enough to include every operation the crash model promises to keep
  (every acknowledged one for a process crash, every durably acknowledged one
  for a power cut), and
* no longer than the acknowledged operations plus the one in flight, which may
  or may not have applied.

``History.check`` returns the problems it finds, each worded so that a failure
names what went wrong: a lost write, a resurrected key, a value that was never
written for its key, or contents that match no prefix at all.

The model is deliberately simple: ``key -> (value, expires_at)`` with
``expires_at == 0.0`` for "never", evaluated at the clock of the reopen.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

#: The model: key -> (value, absolute expiry; 0.0 means never).
Model = dict[bytes, tuple[bytes, float]]


def visible(model: Mapping[bytes, tuple[bytes, float]], now: float) -> dict[bytes, bytes]:
    """The key -> value mapping a reader sees at time ``now``."""
    return {k: v for k, (v, exp) in model.items() if exp == 0.0 or exp > now}


@dataclass(frozen=True)
class Bounds:
    """The prefixes a crash at one moment may leave: ``low <= n <= high``."""

    low: int
    high: int
    now: float


@dataclass
class History:
    """Model states after each operation, how many were acknowledged and how many are durable.

    ``states[i]`` is the model after the first ``i`` operations. Operations are
    announced with ``begin`` (the one in flight) and acknowledged with ``ack``
    when the call returns; ``durable`` is how many leading operations a power
    cut must keep.
    """

    states: list[Model] = field(default_factory=lambda: [{}])
    labels: list[str] = field(default_factory=list)
    acked: int = 0
    durable: int = 0
    _seen: dict[tuple[int, float], tuple[Model, dict[bytes, bytes]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    @classmethod
    def starting_from(cls, model: Model) -> History:
        """A history whose initial (durable) state is ``model``."""
        return cls(states=[dict(model)])

    @property
    def in_flight(self) -> bool:
        return len(self.labels) > self.acked

    def begin(self, label: str, after: Model) -> None:
        """Announce the operation about to run and the model state it would leave."""
        if self.in_flight:
            raise RuntimeError(f"{self.labels[-1]!r} is still in flight")
        self.labels.append(label)
        self.states.append(after)

    def ack(self, *, durable: bool = False) -> None:
        """The operation in flight returned.

        ``durable`` means it made everything acknowledged so far durable against
        a power cut (an fsync covering all of it returned before the call did).
        """
        if not self.in_flight:
            raise RuntimeError("no operation in flight")
        self.acked += 1
        if durable:
            self.durable = self.acked

    def record(self, label: str, after: Model, *, durable: bool = False) -> None:
        """``begin`` and ``ack`` at once."""
        self.begin(label, after)
        self.ack(durable=durable)

    @property
    def current(self) -> Model:
        """The model after the last acknowledged operation."""
        return self.states[self.acked]

    def bounds(self, now: float, *, power_loss: bool) -> Bounds:
        """The prefixes a crash now may leave under the given crash model."""
        low = self.durable if power_loss else self.acked
        return Bounds(low, len(self.labels), now)

    def settle(self, length: int) -> None:
        """After a crash: the store holds the first ``length`` operations; forget the rest."""
        del self.states[length + 1 :]
        del self.labels[length:]
        self.acked = length
        self.durable = min(self.durable, length)

    def matching(self, store: Mapping[bytes, bytes], bounds: Bounds) -> list[int]:
        """Prefix lengths within ``bounds`` whose model equals ``store``."""
        top = min(bounds.high, len(self.states) - 1)
        return [n for n in range(bounds.low, top + 1) if self._visible(n, bounds.now) == store]

    def _visible(self, n: int, now: float) -> dict[bytes, bytes]:
        key = (n, now)
        cache = self._seen
        found = cache.get(key)
        if found is None or found[0] is not self.states[n]:
            found = cache[key] = (self.states[n], visible(self.states[n], now))
        return found[1]

    def written(self, key: bytes, upto: int) -> set[bytes]:
        """Every value written for ``key`` by the first ``upto`` operations."""
        values = set()
        for state in self.states[: upto + 1]:
            entry = state.get(key)
            if entry is not None:
                values.add(entry[0])
        return values

    def check(self, store: Mapping[bytes, bytes], bounds: Bounds) -> list[str]:
        """Problems with ``store`` as the outcome of a crash within ``bounds``; [] if none."""
        if self.matching(store, bounds):
            return []
        top = min(bounds.high, len(self.states) - 1)
        problems = []
        for key, value in sorted(store.items()):
            if value not in self.written(key, top):
                problems.append(f"{key!r} = {_short(value)}: a value never written for that key")
        floor = visible(self.states[bounds.low], bounds.now)
        for key, value in sorted(floor.items()):
            if key not in store:
                what = self._writer_of(key, value, bounds.low)
                problems.append(f"{key!r} lost: {what} had to survive")
            elif store[key] != value and store[key] in self.written(key, bounds.low):
                problems.append(f"{key!r} = {_short(store[key])}: older than the surviving write")
        seen_later = set().union(
            *(visible(s, bounds.now) for s in self.states[bounds.low : top + 1])
        )
        for key in sorted(set(store) - set(floor)):
            if key not in seen_later:
                problems.append(f"{key!r} resurrected: deleted, overwritten or expired for good")
        if not problems:
            problems.append(
                f"contents {_describe(store)} match no prefix of {bounds.low}..{top} operations"
            )
        return problems

    def _writer_of(self, key: bytes, value: bytes, upto: int) -> str:
        for i in range(upto, 0, -1):
            previous = self.states[i - 1].get(key)
            if self.states[i].get(key, (b"", 0.0))[0] == value and (
                previous is None or previous[0] != value
            ):
                return f"operation {i} ({self.labels[i - 1]})"
        return "an acknowledged write"


def _short(value: bytes) -> str:
    return repr(value if len(value) <= 24 else value[:21] + b"...")


def _describe(store: Mapping[bytes, bytes]) -> str:
    items: Iterable[tuple[bytes, bytes]] = sorted(store.items())
    return "{" + ", ".join(f"{k!r}: {_short(v)}" for k, v in items) + "}"
