"""YCSB's request generators, written here from their published definitions.

Source of the facts (not of code): YCSB's ``site.ycsb.generator`` package and
``site.ycsb.Utils`` (github.com/brianfrankcooper/YCSB), which follow Gray et
al., "Quickly Generating Billion-Record Synthetic Databases", SIGMOD 1994:

* :class:`Zipfian`: item 0 is the most popular. With ``theta`` = 0.99,
  ``zeta(n) = sum(1 / i**theta for i in 1..n)``, ``alpha = 1 / (1 - theta)`` and
  ``eta = (1 - (2/n)**(1 - theta)) / (1 - zeta(2) / zeta(n))``, a uniform ``u``
  gives 0 if ``u * zeta(n) < 1``, 1 if it is below ``1 + 0.5**theta``, and
  ``floor(n * (eta*u - eta + 1)**alpha)`` otherwise. When the item count grows,
  zeta is extended by the new terms only.
* :class:`ScrambledZipfian`: draws from a zipfian over 10**10 items (zeta
  precomputed by YCSB as 26.46902820178302) and maps the draw through FNV-1 64
  (:func:`fnv_hash64`) modulo the item count, so the popular items are scattered
  over the key space. (Newer YCSB declares 10**16 items but still uses the zeta of
  10**10; we keep the consistent pair, see :func:`zeta_large`.)
* :class:`SkewedLatest`: ``last - zipfian(last)``, where ``last`` is the newest
  acknowledged insert, so recent items are the popular ones.

Each generator owns its ``random.Random``, so every thread gets its own.
"""

from __future__ import annotations

import random
import threading
from functools import lru_cache

#: YCSB's default zipfian constant.
ZIPFIAN_CONSTANT = 0.99
#: The item count ScrambledZipfian draws over, and YCSB's zeta for it at 0.99.
SCRAMBLED_ITEMS = 10_000_000_000
SCRAMBLED_ZETAN = 26.46902820178302

FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 1099511628211
_MASK64 = (1 << 64) - 1


def fnv_hash64(value: int) -> int:
    """YCSB's ``Utils.fnvhash64``: FNV-1 over the 8 little-endian bytes of a long,
    with Java's wrapping 64-bit signed arithmetic, then its absolute value.

    Once the remaining bytes are zero, xor changes nothing, so the remaining
    multiplications are done as one (by a power of the prime): same result, fewer
    steps for the small numbers a benchmark hashes.
    """
    h = FNV_OFFSET_BASIS_64
    left = 8
    while value and left:
        h = ((h ^ (value & 0xFF)) * FNV_PRIME_64) & _MASK64
        value >>= 8
        left -= 1
    h = (h * _PRIME_POWERS[left]) & _MASK64
    signed = h - (1 << 64) if h >= 1 << 63 else h
    return abs(signed)


_PRIME_POWERS = [pow(FNV_PRIME_64, k, 1 << 64) for k in range(9)]

#: The popular draws repeat, so their hashes are kept (a bounded cache).
_cached_fnv_hash64 = lru_cache(maxsize=1 << 18)(fnv_hash64)


def zeta(n: int, theta: float, start: int = 0, initial: float = 0.0) -> float:
    """``initial + sum(1 / i**theta for i in start+1..n)`` (YCSB's ``zetastatic``)."""
    total = initial
    for i in range(start + 1, n + 1):
        total += 1.0 / float(i) ** theta
    return total


def zeta_large(n: int, theta: float, exact_terms: int = 10_000) -> float:
    """zeta(n) for an ``n`` too large to sum, by Euler-Maclaurin: the first terms
    exactly, the rest as an integral plus end corrections. Used by the tests to
    check YCSB's precomputed :data:`SCRAMBLED_ZETAN`."""
    if n <= exact_terms:
        return zeta(n, theta)
    m = exact_terms
    head = zeta(m, theta)

    def f(x: float) -> float:
        return float(x**-theta)

    def f1(x: float) -> float:
        return float(-theta * x ** (-theta - 1))

    integral: float = (float(n) ** (1 - theta) - float(m) ** (1 - theta)) / (1 - theta)
    return head + integral + (f(n) - f(m)) / 2 + (f1(n) - f1(m)) / 12


class Zipfian:
    """Items ``base .. base + items - 1``, item ``base`` the most popular."""

    def __init__(
        self,
        items: int,
        rng: random.Random,
        *,
        base: int = 0,
        theta: float = ZIPFIAN_CONSTANT,
        zetan: float | None = None,
    ) -> None:
        if items < 1:
            raise ValueError(f"a zipfian needs at least one item, not {items}")
        self.items = items
        self.base = base
        self.theta = theta
        self.rng = rng
        self.alpha = 1.0 / (1.0 - theta)
        self.zeta2 = zeta(2, theta)
        self.zetan = zeta(items, theta) if zetan is None else zetan
        self.count_for_zeta = items
        self.eta = self._eta()

    def _eta(self) -> float:
        # YCSB's eta keeps the item count the generator was made with, even after
        # zeta has been extended for a larger count; so does ours.
        shrink: float = (2.0 / self.items) ** (1 - self.theta)
        return (1 - shrink) / (1 - self.zeta2 / self.zetan)

    def next(self, items: int | None = None) -> int:
        """The next draw, over ``items`` items if given (which may only grow)."""
        count = self.items if items is None else items
        if count > self.count_for_zeta:
            self.zetan = zeta(count, self.theta, self.count_for_zeta, self.zetan)
            self.count_for_zeta = count
            self.eta = self._eta()
        u = self.rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return self.base
        if uz < 1.0 + 0.5**self.theta:
            return self.base + 1
        return self.base + int(count * (self.eta * u - self.eta + 1) ** self.alpha)


class ScrambledZipfian:
    """Zipfian popularity over ``lo .. lo + items - 1``, the popular items scattered."""

    def __init__(self, items: int, rng: random.Random, *, lo: int = 0) -> None:
        if items < 1:
            raise ValueError(f"a zipfian needs at least one item, not {items}")
        self.items = items
        self.lo = lo
        self.inner = Zipfian(SCRAMBLED_ITEMS, rng, zetan=SCRAMBLED_ZETAN)

    def next(self) -> int:
        return self.lo + _cached_fnv_hash64(self.inner.next()) % self.items


class AcknowledgedCounter:
    """The insert key sequence: hands out new key numbers, and knows the highest
    one below which every insert has finished (YCSB's AcknowledgedCounterGenerator),
    so readers never ask for a key that is still being written."""

    def __init__(self, start: int) -> None:
        self._next = start
        self._last = start - 1
        self._done: set[int] = set()
        self._lock = threading.Lock()

    def take(self) -> int:
        with self._lock:
            value = self._next
            self._next += 1
            return value

    def acknowledge(self, value: int) -> None:
        with self._lock:
            self._done.add(value)
            while self._last + 1 in self._done:
                self._last += 1
                self._done.discard(self._last)

    def last(self) -> int:
        """The highest key number with every insert up to it finished."""
        return self._last


class SkewedLatest:
    """Recent inserts are the popular ones: ``last - zipfian(last)``."""

    def __init__(self, counter: AcknowledgedCounter, rng: random.Random) -> None:
        self.counter = counter
        self.zipfian = Zipfian(max(1, counter.last()), rng)

    def next(self) -> int:
        last = self.counter.last()
        return last - self.zipfian.next(max(1, last))


class Uniform:
    """Every item in ``lo .. hi`` equally likely."""

    def __init__(self, lo: int, hi: int, rng: random.Random) -> None:
        self.lo, self.hi, self.rng = lo, hi, rng

    def next(self) -> int:
        return self.rng.randint(self.lo, self.hi)


__all__ = [
    "SCRAMBLED_ITEMS",
    "SCRAMBLED_ZETAN",
    "ZIPFIAN_CONSTANT",
    "AcknowledgedCounter",
    "ScrambledZipfian",
    "SkewedLatest",
    "Uniform",
    "Zipfian",
    "fnv_hash64",
    "zeta",
    "zeta_large",
]
