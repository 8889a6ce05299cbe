"""Dummy reports: when our phones send them and what they look like [robert.md: the contract;
DP-3T and Corona-Warn-App do the same].

A phone that reports has tested positive; anyone watching the network can see a phone upload
a report, even inside TLS, by its size and timing. So every phone also uploads dummy reports
at random times: the server recognises them by their token (``protocol.codes.dummy_code``),
changes nothing, and answers them as it answers real ones. A dummy is shaped like the report
the phone would send now (as many contacts, as many HELLOs each), with random contents, so its
size tells nothing either. No I/O and no clock here: ``phone.client`` sends them.
"""

from __future__ import annotations

import math

from protocol.contacts import MAX_RSSI_MAGNITUDE, Contact, HelloRecord
from protocol.types import RandomSource

MEAN_DAYS_BETWEEN_DUMMIES = 5.0
"""On average one dummy every five days (the DP-3T apps' sampling rate, 0.2 a day)."""


def days_until_next_dummy(
    random: RandomSource, mean_days: float = MEAN_DAYS_BETWEEN_DUMMIES
) -> float:
    """Days to wait before the next dummy: exponential (memoryless, so when the last one was
    says nothing about the next), from 53 random bits."""
    uniform = (int.from_bytes(random(7), "big") >> 3) / 2**53  # in [0, 1)
    return -math.log(1.0 - uniform) * mean_days


def dummy_contacts(shape: list[Contact], random: RandomSource) -> list[Contact]:
    """Random contacts with the shape of ``shape`` (the phone's own contacts now): as many
    contacts and HELLOs, every field random, every number with as many digits as the one it
    stands for, so that the dummy's JSON is exactly as long as the real report's."""
    return [
        Contact(
            random(8),
            random(1),
            tuple(
                HelloRecord(
                    same_width(r.time_collected, random, 2**32 - 1),
                    same_width(r.time_from_hello, random, 0xFFFF),
                    random(5),
                    same_width(r.rssi, random, MAX_RSSI_MAGNITUDE),
                )
                for r in contact.records
            ),
        )
        for contact in shape
    ]


def same_width(value: int, random: RandomSource, limit: int) -> int:
    """A random integer written with as many characters as ``value`` (sign included), of
    magnitude at most ``limit`` (``value``'s own magnitude must be within it)."""
    digits = len(str(abs(value)))
    low = int(10 ** (digits - 1)) if digits > 1 else (1 if value < 0 else 0)  # no "-0"
    high = min(int(10**digits) - 1, limit)
    drawn = low + int.from_bytes(random(8), "big") % (high - low + 1)  # 64 bits: no bias to see
    return -drawn if value < 0 else drawn
