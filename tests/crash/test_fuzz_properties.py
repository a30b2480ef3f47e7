"""The fuzz targets' properties under Hypothesis, so CI runs them on every change.

fuzz/ runs the same ``engine.testing.fuzzing`` checks under Atheris for long,
coverage-guided runs. Here the structure-aware checks draw their decisions
from Hypothesis, so a failure shrinks to the fewest, smallest decisions.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.testing import quiet_logs
from engine.testing.fuzzing import (
    check_hint_parser,
    check_hint_recovery,
    check_record_decoder,
    check_segment_recovery,
)
from engine.testing.strategies import drawn_recipe, profile

EXAMPLES = 5000 if profile() == "deep" else 300
#: The deep profile runs for as long as it takes.
pytestmark = pytest.mark.timeout(0 if profile() == "deep" else 600)
fuzz_settings = settings(
    max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@fuzz_settings
@given(st.binary(max_size=512))
def test_record_decoder_on_arbitrary_bytes(data: bytes) -> None:
    check_record_decoder(data)


@fuzz_settings
@given(st.lists(st.binary(min_size=1, max_size=80), min_size=1, max_size=4), st.data())
def test_record_decoder_on_records_and_junk(pieces: list[bytes], data: st.DataObject) -> None:
    from engine.format import encode_record

    blob = b"".join(
        encode_record(1 + i % 5, i, 0.0, piece[:3] or b"k", piece) if i % 2 == 0 else piece
        for i, piece in enumerate(pieces)
    )
    cut = data.draw(st.integers(0, len(blob)))
    check_record_decoder(blob[:cut])


@fuzz_settings
@given(st.data())
def test_segment_recovery_on_damaged_logs(data: st.DataObject) -> None:
    with quiet_logs():
        check_segment_recovery(drawn_recipe(data))


@fuzz_settings
@given(st.data())
def test_hint_parser_on_damaged_hints(data: st.DataObject) -> None:
    check_hint_parser(drawn_recipe(data))


@fuzz_settings
@given(st.data())
def test_recovery_through_damaged_hints_equals_a_scan(data: st.DataObject) -> None:
    with quiet_logs():
        check_hint_recovery(drawn_recipe(data))
