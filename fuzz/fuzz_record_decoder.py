"""Atheris target: the record decoder on arbitrary bytes (engine.testing.fuzzing).

Run (see fuzz/README.md):
    .venv/bin/python fuzz/fuzz_record_decoder.py -max_total_time=300 fuzz/corpus/record_decoder
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]

with atheris.instrument_imports():
    from engine.testing.fuzzing import check_record_decoder


def test_one_input(data: bytes) -> None:
    check_record_decoder(data)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
