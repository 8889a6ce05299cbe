"""Time and epochs [robert.md: Time].

Protocol time is NTP seconds. Epochs last 15 minutes and are counted from the service start
``T_start``; the server key K_S changes with the UTC day that contains an epoch's start.
Nothing here reads a clock: every function takes the time it works on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from protocol.types import Epoch, NtpSeconds

NTP_UNIX_OFFSET = 2_208_988_800
"""Seconds from 1900-01-01 (NTP era 0) to 1970-01-01 (Unix epoch)."""

EPOCH_DURATION = 900
EPOCHS_PER_DAY = 86_400 // EPOCH_DURATION
NTP_ORIGIN = date(1900, 1, 1)

REFERENCE_TIME_START = NtpSeconds(3_799_958_400)
"""2020-06-01T00:00:00Z, the service start of the reference server, in NTP seconds."""


def ntp_from_unix(unix_seconds: float) -> NtpSeconds:
    """Whole NTP seconds of a Unix time."""
    return NtpSeconds(int(unix_seconds) + NTP_UNIX_OFFSET)


def unix_from_ntp(ntp_seconds: int) -> int:
    """Unix seconds of an NTP time."""
    return ntp_seconds - NTP_UNIX_OFFSET


def ntp_from_datetime(moment: datetime) -> NtpSeconds:
    """NTP seconds of an aware datetime."""
    if moment.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return ntp_from_unix(moment.timestamp())


def ntp_of_day(day: date) -> NtpSeconds:
    """NTP time of 00:00 UTC of ``day`` (a service start as ``GET /clock`` gives it)."""
    return NtpSeconds((day - NTP_ORIGIN).days * 86_400)


def datetime_from_ntp(ntp_seconds: int) -> datetime:
    """The aware UTC datetime of an NTP time."""
    return datetime.fromtimestamp(unix_from_ntp(ntp_seconds), tz=UTC)


def epoch_of(ntp_seconds: int, time_start: int) -> Epoch:
    """The epoch containing ``ntp_seconds``: floor((t - T_start) / 900) [robert.md: Time]."""
    return Epoch((ntp_seconds - time_start) // EPOCH_DURATION)


def epoch_start(epoch: int, time_start: int) -> NtpSeconds:
    """NTP time at which ``epoch`` begins."""
    return NtpSeconds(time_start + epoch * EPOCH_DURATION)


def day_of_epoch(epoch: int, time_start: int) -> date:
    """The UTC day containing the epoch's start: the day whose K_S encrypts its EBIDs."""
    return day_of_ntp(epoch_start(epoch, time_start))


def day_of_ntp(ntp_seconds: int) -> date:
    """The UTC day containing an NTP time."""
    return NTP_ORIGIN + timedelta(days=ntp_seconds // 86_400)


def neighbour_day(epoch: int, time_start: int) -> date | None:
    """The other UTC day a reception in ``epoch`` may belong to, when ``epoch`` is the first or
    last of its day, else None: near midnight the sender's EBID may be under the neighbouring
    day's K_S [robert.md: EBID and ECC]."""
    day = day_of_epoch(epoch, time_start)
    if day_of_epoch(epoch + 1, time_start) != day:
        return day + timedelta(days=1)
    if day_of_epoch(epoch - 1, time_start) != day:
        return day - timedelta(days=1)
    return None


def epochs_of_day(day: date, time_start: int) -> range:
    """Every epoch whose start lies in the UTC ``day`` (at most 96; fewer before T_start)."""
    day_start = (day - NTP_ORIGIN).days * 86_400
    first = max(0, -(-(day_start - time_start) // EPOCH_DURATION))
    end = -(-(day_start + 86_400 - time_start) // EPOCH_DURATION)
    return range(first, max(first, end))


def low16(ntp_seconds: int) -> int:
    """The 16 low bits of an NTP time: a HELLO's time field [robert.md: HELLO message]."""
    return ntp_seconds & 0xFFFF


def low32(ntp_seconds: int) -> int:
    """The 32 low bits of an NTP time: a request's time [robert.md: Authenticated requests]."""
    return ntp_seconds & 0xFFFF_FFFF


def wrapped_distance(a: int, b: int, bits: int) -> int:
    """|a - b| for two counters that wrap around at 2**bits (shortest way round)."""
    modulus = 1 << bits
    d = (a - b) % modulus
    return min(d, modulus - d)


def epochs_covering(seconds: int) -> int:
    """How many whole epochs ``seconds`` spans, rounded up (an interval set in seconds, such
    as the minimum gap between two status requests, counted in epochs)."""
    return -(-seconds // EPOCH_DURATION)


def day_start(ntp_seconds: int) -> NtpSeconds:
    """NTP time of the start (00:00 UTC) of the day containing ``ntp_seconds``."""
    return NtpSeconds(ntp_seconds // 86_400 * 86_400)
