"""Atheris target: hint files, structure-aware (engine.testing.fuzzing).

The input bytes are a recipe: every other input builds a hint and damages it
(``decode_hint`` must raise CorruptionError and nothing else, and catch all
damage a crash can do); the rest build a compacted store, damage its hint and
reopen it (the same contents as a full scan of the segment).

Run (see fuzz/README.md):
    .venv/bin/python fuzz/fuzz_hint_parser.py -max_total_time=300 fuzz/corpus/hint_parser
"""

from __future__ import annotations

import logging
import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from engine.testing.fuzzing import Recipe, check_hint_parser, check_hint_recovery


def test_one_input(data: bytes) -> None:
    if data[:1] and data[0] & 1:
        check_hint_recovery(Recipe(data[1:]))
    else:
        check_hint_parser(Recipe(data[1:]))


if __name__ == "__main__":
    logging.getLogger("seglog").setLevel(logging.CRITICAL)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
