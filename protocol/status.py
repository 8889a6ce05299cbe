"""What a status answer tells the phone about its exposure [robert.md: Status answer; the
contract the real apps hold the server to].

``riskLevel`` is 0 or 4 only: the apps alert on anything above 0, and levels 2 and 3 are their
venue warnings. The answer carries the day of the last contact, not its epoch, moved by one
day either way so that a warned person cannot tell which encounter it was, and never in the
future (an alert dated tomorrow is absurd to the person reading it).

The move must be the same in every answer about the same contact: drawn afresh each time, a
phone asking a few times would see the true day as the middle of the three it is shown. It is
therefore drawn from a keyed hash of the registration and the contact's epoch (the key is the
server's), uniform over -1, 0, +1 and stable.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from protocol.epochs import day_start, epoch_start
from protocol.types import NtpSeconds, RandomSource

DAY_SECONDS = 86_400
RISK_LEVEL_NONE = 0
RISK_LEVEL_HIGH = 4


def risk_level(at_risk: bool) -> int:
    """The ``riskLevel`` of a status answer: 4 at risk, else 0."""
    return RISK_LEVEL_HIGH if at_risk else RISK_LEVEL_NONE


def blurred_contact_day(epoch: int, time_start: int, random: RandomSource) -> NtpSeconds:
    """Start of the last contact's UTC day moved by -1, 0 or +1 day (uniformly), as NTP
    seconds."""
    shift = _uniform_shift(random)
    return NtpSeconds(day_start(epoch_start(epoch, time_start)) + shift * DAY_SECONDS)


def stable_random(key: bytes, message: bytes) -> RandomSource:
    """A byte source determined by ``key`` and ``message`` (HMAC-SHA256 in counter mode): the
    same draws each time for the same message, unpredictable without the key."""
    stream = _hmac_stream(key, message)

    def draw(n: int) -> bytes:
        return bytes(next(stream) for _ in range(n))

    return draw


def _hmac_stream(key: bytes, message: bytes) -> Iterator[int]:
    counter = 0
    while True:
        yield from hmac.digest(key, counter.to_bytes(4, "big") + message, "sha256")
        counter += 1


def last_contact_date(
    epoch: int, time_start: int, key: bytes, owner: bytes, now_ntp: int
) -> NtpSeconds:
    """The ``lastContactDate`` of a status answer: the blurred day of the contact in
    ``epoch`` for the registration ``owner``, the same in every answer, at most today."""
    message = owner + epoch.to_bytes(8, "big", signed=True)
    blurred = blurred_contact_day(epoch, time_start, stable_random(key, message))
    return NtpSeconds(min(blurred, day_start(now_ntp)))


def _uniform_shift(random: RandomSource) -> int:
    """-1, 0 or +1 with equal chances (rejection sampling on one byte: 255 = 3 * 85)."""
    while True:
        byte = random(1)[0]
        if byte < 255:
            return byte % 3 - 1
