"""Epoch and time arithmetic."""

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from protocol.epochs import (
    REFERENCE_TIME_START,
    day_of_epoch,
    epoch_of,
    epoch_start,
    epochs_of_day,
    ntp_from_datetime,
    wrapped_distance,
)


def test_reference_time_start() -> None:
    assert ntp_from_datetime(datetime(2020, 6, 1, tzinfo=UTC)) == REFERENCE_TIME_START == 3799958400


def test_epochs_are_15_minutes() -> None:
    assert epoch_of(REFERENCE_TIME_START, REFERENCE_TIME_START) == 0
    assert epoch_of(REFERENCE_TIME_START + 899, REFERENCE_TIME_START) == 0
    assert epoch_of(REFERENCE_TIME_START + 900, REFERENCE_TIME_START) == 1
    assert day_of_epoch(95, REFERENCE_TIME_START) == date(2020, 6, 1)
    assert day_of_epoch(96, REFERENCE_TIME_START) == date(2020, 6, 2)


def test_epochs_of_day() -> None:
    assert epochs_of_day(date(2020, 6, 2), REFERENCE_TIME_START) == range(96, 192)
    assert epochs_of_day(date(2020, 5, 31), REFERENCE_TIME_START) == range(0, 0)
    # A service starting at 06:00 has 72 epochs on its first day.
    start = ntp_from_datetime(datetime(2020, 6, 1, 6, tzinfo=UTC))
    assert len(epochs_of_day(date(2020, 6, 1), start)) == 72


@given(st.integers(0, 2**24), st.integers(3_700_000_000, 4_000_000_000))
def test_epoch_start_is_inverse(epoch: int, time_start: int) -> None:
    assert epoch_of(epoch_start(epoch, time_start), time_start) == epoch
    assert epoch in epochs_of_day(day_of_epoch(epoch, time_start), time_start)


def test_wrapped_distance() -> None:
    assert wrapped_distance(0xFFFF, 0x0001, 16) == 2
    assert wrapped_distance(10, 5, 16) == 5


def test_neighbour_day_only_at_day_edges() -> None:
    from protocol.epochs import neighbour_day

    assert neighbour_day(95, REFERENCE_TIME_START) == date(2020, 6, 2)  # last of 2020-06-01
    assert neighbour_day(96, REFERENCE_TIME_START) == date(2020, 6, 1)  # first of 2020-06-02
    assert neighbour_day(150, REFERENCE_TIME_START) is None
