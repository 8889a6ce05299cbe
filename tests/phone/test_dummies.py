"""When our phones send dummy reports, and what they look like."""

from __future__ import annotations

import json
import random
import statistics

from hypothesis import given
from hypothesis import strategies as st

from phone.dummies import (
    MEAN_DAYS_BETWEEN_DUMMIES,
    days_until_next_dummy,
    dummy_contacts,
    same_width,
)
from protocol.contacts import Contact, HelloRecord


def test_waits_are_exponential_with_the_mean_of_dp3t() -> None:
    rng = random.Random(1)
    waits = [days_until_next_dummy(rng.randbytes) for _ in range(20_000)]
    assert min(waits) >= 0
    assert abs(statistics.fmean(waits) - MEAN_DAYS_BETWEEN_DUMMIES) < 0.15
    # Memoryless: the median of an exponential is ln 2 times its mean.
    assert abs(statistics.median(waits) - 0.6931 * MEAN_DAYS_BETWEEN_DUMMIES) < 0.15


@given(st.integers(min_value=-1000, max_value=2**32 - 1), st.integers(min_value=0, max_value=2**32))
def test_same_width_keeps_the_characters(value: int, seed: int) -> None:
    limit = max(abs(value), 1000 if value < 0 else 2**32 - 1)
    drawn = same_width(value, random.Random(seed).randbytes, limit)
    assert len(str(drawn)) == len(str(value)) and abs(drawn) <= limit
    assert (drawn < 0) == (value < 0)


def test_a_dummy_has_the_shape_and_the_size_of_the_real_report() -> None:
    rng = random.Random(2)
    real = [
        Contact(
            rng.randbytes(8),
            rng.randbytes(1),
            tuple(
                HelloRecord(
                    3_990_000_000 + i, rng.randrange(65536), rng.randbytes(5), -rng.randrange(100)
                )
                for i in range(rng.randrange(1, 40))
            ),
        )
        for _ in range(25)
    ]
    dummy = dummy_contacts(real, rng.randbytes)
    assert [len(c.records) for c in dummy] == [len(c.records) for c in real]
    assert json.dumps([c.to_fields() for c in dummy]) != json.dumps([c.to_fields() for c in real])
    assert len(json.dumps([c.to_fields() for c in dummy])) == len(
        json.dumps([c.to_fields() for c in real])
    )
