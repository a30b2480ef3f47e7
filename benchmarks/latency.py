"""Operation latencies as HdrHistograms (the ``hdrhistogram`` package).

Workers record nanoseconds, encode one histogram per operation type and round
(HdrHistogram's compressed, base64 form, a few hundred bytes), and the runner
merges the rounds' histograms before reading percentiles, so a percentile is
over every operation of every round, not a median of per-round percentiles.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdrh.histogram import HdrHistogram

#: Recordable range: 1 ns to one hour, 3 significant digits (0.1% resolution).
LOWEST_NS = 1
HIGHEST_NS = 3_600 * 1_000_000_000
DIGITS = 3

#: The percentiles reported, with their names in tables and JSON.
PERCENTILES: dict[str, float] = {"p50": 50.0, "p95": 95.0, "p99": 99.0, "p99.9": 99.9}


def new_histogram() -> HdrHistogram:
    return HdrHistogram(LOWEST_NS, HIGHEST_NS, DIGITS)


def record_all(values_ns: Iterable[int]) -> HdrHistogram:
    """A histogram of ``values_ns``; values outside the range are clamped into it."""
    hist = new_histogram()
    record = hist.record_value
    for value in values_ns:
        record(min(max(value, LOWEST_NS), HIGHEST_NS))
    return hist


def encode(hist: HdrHistogram) -> str:
    data = hist.encode()
    return data.decode("ascii") if isinstance(data, bytes) else str(data)


def merge(encoded: Iterable[str]) -> HdrHistogram:
    """One histogram holding every value of the encoded ones."""
    total = new_histogram()
    for text in encoded:
        total.decode_and_add(text)
    return total


def summarize(hist: HdrHistogram) -> dict[str, float]:
    """Percentiles and max in microseconds, plus the count."""
    count = hist.get_total_count()
    summary: dict[str, float] = {"count": float(count)}
    if not count:
        return summary
    values = hist.get_percentile_to_value_dict(list(PERCENTILES.values()))
    for name, percentile in PERCENTILES.items():
        summary[name] = values[percentile] / 1000.0
    summary["max"] = hist.get_max_value() / 1000.0
    return summary
