"""Atheris target: recovery of damaged logs, structure-aware (engine.testing.fuzzing).

The input bytes are a recipe: they build a valid log of puts, deletes and
batches over one to three segments, then cut, zero, garble, bit-flip, splice
and re-seal it. The store is opened in every recovery mode: CorruptionError,
or a store that shows only values some record carried for their key, reopens
to the same contents and takes a write.

Run (see fuzz/README.md):
    .venv/bin/python fuzz/fuzz_segment_recovery.py -max_total_time=300 fuzz/corpus/segment_recovery
"""

from __future__ import annotations

import logging
import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from engine.testing.fuzzing import Recipe, check_segment_recovery


def test_one_input(data: bytes) -> None:
    check_segment_recovery(Recipe(data))


if __name__ == "__main__":
    logging.getLogger("seglog").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
