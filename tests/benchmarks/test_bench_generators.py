"""YCSB's generators and mixes checked against their definitions, statistically.

The expected probabilities are computed here from YCSB's formulas (Gray et al.'s
zipfian with YCSB's constants), independently of the code under test; the draws
are seeded, so a pass or a fail is reproducible. Each count must lie within five
binomial standard deviations of its expectation.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from itertools import pairwise

import pytest

from benchmarks.generators import (
    SCRAMBLED_ITEMS,
    SCRAMBLED_ZETAN,
    ZIPFIAN_CONSTANT,
    AcknowledgedCounter,
    ScrambledZipfian,
    SkewedLatest,
    Zipfian,
    fnv_hash64,
    zeta,
    zeta_large,
)
from benchmarks.ycsb import MIXES, OpChooser, key_chooser, ycsb_key

THETA = ZIPFIAN_CONSTANT


def java_fnv(value: int) -> int:
    """YCSB's Utils.fnvhash64 transcribed step by step: 8 rounds of xor-then-multiply
    in signed 64-bit arithmetic, then Math.abs."""
    h = 0xCBF29CE484222325
    for _ in range(8):
        h ^= value & 0xFF
        value >>= 8
        h = (h * 1099511628211) % (1 << 64)
    return abs(h - (1 << 64) if h >= 1 << 63 else h)


def formula_pmf(items: int, upto: int, zetan: float | None = None) -> list[float]:
    """P(draw = k) for k < upto, for YCSB's zipfian over ``items`` items.

    u uniform in [0, 1): 0 when u*zetan < 1, 1 when below 1 + 0.5**theta, else
    floor(items * (eta*u - eta + 1)**alpha), which is >= k exactly when
    u >= ((k/items)**(1-theta) - 1)/eta + 1.
    """
    zn = zeta(items, THETA) if zetan is None else zetan
    eta = (1 - (2 / items) ** (1 - THETA)) / (1 - zeta(2, THETA) / zn)
    first = 1 / zn
    second: float = (1 + 0.5**THETA) / zn

    def at_least(k: int) -> float:
        """The smallest u in the formula branch whose draw is >= k."""
        bound: float = ((k / items) ** (1 - THETA) - 1) / eta + 1
        return min(1.0, max(second, bound))

    pmf = []
    for k in range(upto):
        p = at_least(k + 1) - at_least(k)
        if k == 0:
            p += first
        elif k == 1:
            p += second - first
        pmf.append(p)
    return pmf


def assert_counts(observed: Counter[int], expected: dict[int, float], draws: int) -> None:
    for item, p in expected.items():
        sigma = math.sqrt(draws * p * (1 - p))
        assert abs(observed[item] - draws * p) <= 5 * sigma + 1, (item, observed[item], draws * p)


def binned(
    pmf: list[float], counts: Counter[int], edges: list[int]
) -> tuple[Counter[int], dict[int, float]]:
    """Counts and probabilities summed over [edges[i], edges[i+1])."""
    obs: Counter[int] = Counter()
    exp: dict[int, float] = {}
    for i, (lo, hi) in enumerate(pairwise(edges)):
        obs[i] = sum(counts[k] for k in range(lo, hi))
        exp[i] = sum(pmf[lo:hi])
    return obs, exp


EDGES = [*range(12), 20, 50, 100, 200, 500, 1000]


def test_fnv_hash64_is_ycsbs() -> None:
    rng = random.Random(5)
    for value in [0, 1, 255, 256, 2**40 + 7, 2**62, *(rng.randrange(2**62) for _ in range(2000))]:
        assert fnv_hash64(value) == java_fnv(value)


def test_precomputed_zeta_is_zeta_of_ten_billion() -> None:
    assert zeta_large(SCRAMBLED_ITEMS, THETA) == pytest.approx(SCRAMBLED_ZETAN, rel=1e-9)
    assert zeta_large(50_000, THETA, exact_terms=1000) == pytest.approx(zeta(50_000, THETA))


def test_zipfian_matches_ycsbs_formula() -> None:
    items, draws = 1000, 200_000
    gen = Zipfian(items, random.Random(11))
    counts = Counter(gen.next() for _ in range(draws))
    assert min(counts) >= 0 and max(counts) < items
    pmf = formula_pmf(items, items)
    assert sum(pmf) == pytest.approx(1.0)
    # The head of the formula is the exact zipfian law: P(k) = (k+1)**-theta / zeta(n).
    assert pmf[0] == pytest.approx(1 / zeta(items, THETA))
    assert pmf[1] == pytest.approx(2**-THETA / zeta(items, THETA))
    assert_counts(*binned(pmf, counts, EDGES), draws)


def test_zipfian_grows_its_zeta_incrementally() -> None:
    gen = Zipfian(100, random.Random(1))
    draws = [gen.next(300) for _ in range(20_000)]
    assert gen.zetan == pytest.approx(zeta(300, THETA))
    assert max(draws) >= 100 and max(draws) < 300


def test_scrambled_zipfian_is_the_hashed_ten_billion_item_zipfian() -> None:
    items, draws, head = 1000, 200_000, 20_000
    gen = ScrambledZipfian(items, random.Random(3))
    counts = Counter(gen.next() for _ in range(draws))
    assert min(counts) >= 0 and max(counts) < items
    inner = formula_pmf(SCRAMBLED_ITEMS, head, zetan=SCRAMBLED_ZETAN)
    expected = [(1 - sum(inner)) / items] * items  # the tail, scattered evenly
    for j, p in enumerate(inner):
        expected[fnv_hash64(j) % items] += p
    top = sorted(range(items), key=lambda i: -expected[i])[:25]
    assert_counts(counts, {i: expected[i] for i in top}, draws)
    assert expected[top[0]] > 0.035  # item 0 alone carries 1/26.47 of the draws


def test_skewed_latest_is_zipfian_back_from_the_newest() -> None:
    counter = AcknowledgedCounter(1001)  # records 0..1000 exist
    assert counter.last() == 1000
    gen = SkewedLatest(counter, random.Random(9))
    draws = 200_000
    counts = Counter(1000 - gen.next() for _ in range(draws))
    assert min(counts) >= 0 and max(counts) < 1000
    assert_counts(*binned(formula_pmf(1000, 1000), counts, EDGES), draws)
    for _ in range(2):
        counter.acknowledge(counter.take())
    assert Counter(gen.next() for _ in range(2000)).most_common(1)[0][0] == 1002


def test_acknowledged_counter_waits_for_every_earlier_insert() -> None:
    counter = AcknowledgedCounter(10)
    a, b, c = counter.take(), counter.take(), counter.take()
    counter.acknowledge(c)
    counter.acknowledge(b)
    assert counter.last() == 9
    counter.acknowledge(a)
    assert counter.last() == 12


def test_zipfian_keys_are_never_beyond_the_inserted_ones() -> None:
    counter = AcknowledgedCounter(500)
    choose = key_chooser("zipfian", 500, 100, counter, random.Random(2))
    assert max(choose() for _ in range(20_000)) <= 499


@pytest.mark.parametrize("name", sorted(MIXES))
def test_each_mix_draws_its_proportions_within_one_percent(name: str) -> None:
    mix = MIXES[name]
    draws = 100_000
    chooser = OpChooser(mix, random.Random(len(name)))
    counts = Counter(chooser.next() for _ in range(draws))
    assert set(counts) == set(mix.ops())
    for op, share in mix.proportions.items():
        assert abs(counts[op] / draws - share) <= 0.01, (op, counts[op])


def test_keys_are_ycsbs_hashed_order() -> None:
    assert ycsb_key(0) == b"user%019d" % java_fnv(0)
    assert len({len(ycsb_key(n)) for n in range(1000)}) == 1
