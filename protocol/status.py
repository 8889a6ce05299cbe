"""What a status answer tells the phone about its exposure [robert.md: Status answer, and
What the later reference server added].

The answer carries the day of the last contact, not its epoch, and that day moved at random by
one day either way, so that a warned person cannot tell which encounter it was.
"""

from __future__ import annotations

from protocol.epochs import day_start, epoch_start
from protocol.types import NtpSeconds, RandomSource

DAY_SECONDS = 86_400


def blurred_contact_day(epoch: int, time_start: int, random: RandomSource) -> NtpSeconds:
    """Start of the last contact's UTC day moved by -1, 0 or +1 day (uniformly), as NTP
    seconds: the ``lastContactDate`` of a status answer."""
    shift = _uniform_shift(random)
    return NtpSeconds(day_start(epoch_start(epoch, time_start)) + shift * DAY_SECONDS)


def _uniform_shift(random: RandomSource) -> int:
    """-1, 0 or +1 with equal chances (rejection sampling on one byte: 255 = 3 * 85)."""
    while True:
        byte = random(1)[0]
        if byte < 255:
            return byte % 3 - 1
