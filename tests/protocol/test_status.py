"""What a status answer says of the exposure: risk levels and the blurred last contact day."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from protocol.epochs import REFERENCE_TIME_START, day_start, epoch_start
from protocol.status import last_contact_date, risk_level, stable_random

KEY = b"k" * 32
DAY = 86_400


def test_risk_level_is_zero_or_four() -> None:
    assert (risk_level(False), risk_level(True)) == (0, 4)


@given(st.integers(min_value=0, max_value=96 * 2000), st.binary(min_size=5, max_size=5))
def test_the_day_is_moved_by_at_most_one_the_same_each_time_and_never_future(
    epoch: int, owner: bytes
) -> None:
    true_day = day_start(epoch_start(epoch, REFERENCE_TIME_START))
    late = true_day + 30 * DAY
    shown = last_contact_date(epoch, REFERENCE_TIME_START, KEY, owner, late)
    assert shown in (true_day - DAY, true_day, true_day + DAY)
    assert last_contact_date(epoch, REFERENCE_TIME_START, KEY, owner, late) == shown
    # Asked the very day of the contact: never tomorrow.
    today = last_contact_date(epoch, REFERENCE_TIME_START, KEY, owner, true_day + 5)
    assert today <= true_day


def test_moves_are_uniform_over_registrations() -> None:
    epoch = 96 * 300 + 40
    true_day = day_start(epoch_start(epoch, REFERENCE_TIME_START))
    shifts = Counter(
        (
            last_contact_date(
                epoch, REFERENCE_TIME_START, KEY, n.to_bytes(5, "big"), true_day + 9 * DAY
            )
            - true_day
        )
        // DAY
        for n in range(3000)
    )
    assert set(shifts) == {-1, 0, 1}
    assert all(900 < count < 1100 for count in shifts.values())


def test_stable_random_depends_on_key_and_message() -> None:
    assert stable_random(KEY, b"a")(40) == stable_random(KEY, b"a")(40)
    assert stable_random(KEY, b"a")(40) != stable_random(KEY, b"b")(40)
    assert stable_random(b"j" * 32, b"a")(40) != stable_random(KEY, b"a")(40)
