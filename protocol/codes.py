"""Submission codes that gate a positive declaration [robert.md: Submission codes].

Two kinds, as France ran them: a short code of 6 characters that a doctor reads out (valid 60
minutes, not reissued within 24 hours) and a long code, a UUID, that a lab prints as a QR code
(valid 7 days). Both are single use; the store enforces that, this module only formats,
generates and validates their shape.

*Choice*: the short-code alphabet drops the characters people confuse when a code is read out or
typed (0/O, 1/I/L), leaving 31 symbols: 31**6 = 887,503,681 codes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from protocol.errors import BadFormat
from protocol.types import RandomSource

SHORT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
SHORT_LENGTH = 6
_LONG_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")
_SHORT_RE = re.compile(f"[{SHORT_ALPHABET}]{{{SHORT_LENGTH}}}")


class CodeKind(StrEnum):
    """The two kinds of submission code."""

    SHORT = "short"
    LONG = "long"


@dataclass(frozen=True, slots=True)
class CodePolicy:
    """Lifetimes of codes, in seconds (defaults as France ran them, 2020-2022)."""

    short_lifetime: int = 3_600
    long_lifetime: int = 7 * 86_400
    short_reuse_delay: int = 86_400
    """A short code is not issued again within this many seconds of its first issue."""

    def lifetime(self, kind: CodeKind) -> int:
        """Seconds a code of ``kind`` stays valid after issue."""
        return self.short_lifetime if kind is CodeKind.SHORT else self.long_lifetime


def _uniform_index(random: RandomSource, size: int) -> int:
    """An index in [0, size) without modulo bias (rejection sampling on one byte)."""
    limit = 256 - 256 % size
    while True:
        byte = random(1)[0]
        if byte < limit:
            return byte % size


def generate_code(kind: CodeKind, random: RandomSource) -> str:
    """A fresh code of ``kind`` from the random source."""
    if kind is CodeKind.SHORT:
        return "".join(
            SHORT_ALPHABET[_uniform_index(random, len(SHORT_ALPHABET))] for _ in range(SHORT_LENGTH)
        )
    raw = bytearray(random(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # UUID version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = raw.hex()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def parse_code(text: object) -> tuple[CodeKind, str]:
    """Kind and canonical form of a code typed or scanned by a person; BadFormat otherwise.

    Short codes are case-insensitive (canonical upper case), long codes canonical lower case.
    """
    if not isinstance(text, str):
        raise BadFormat("code must be a string")
    candidate = text.strip()
    if not candidate.isascii():  # "ſ".upper() is "S": only ASCII letters are the code's
        raise BadFormat("not a submission code")
    if _SHORT_RE.fullmatch(candidate.upper()):
        return CodeKind.SHORT, candidate.upper()
    if _LONG_RE.fullmatch(candidate.lower()):
        return CodeKind.LONG, candidate.lower()
    raise BadFormat("not a submission code")


DUMMY_CODES = {
    CodeKind.SHORT: "0" * SHORT_LENGTH,
    CodeKind.LONG: "00000000-0000-0000-0000-000000000000",
}
"""The tokens of dummy reports: what our phones send, at random times, as DP-3T and
Corona-Warn-App phones do, so that a real report does not single out a positive person to
anyone watching the network. Each has the length of a real code of its kind (the report's size
does not tell), and neither can be one: ``0`` is not in the short alphabet, and the nil UUID is
not a version 4 UUID. The server recognises a dummy by this token alone, inside TLS."""


def dummy_code(random: RandomSource) -> str:
    """The token of a dummy report: short or long with equal chances (real reports carry
    both: doctors read out short codes, labs print long ones)."""
    return DUMMY_CODES[CodeKind.SHORT if random(1)[0] & 1 else CodeKind.LONG]


def is_dummy_code(token: object) -> bool:
    """True for a dummy report's token, exactly as ``dummy_code`` writes it."""
    return isinstance(token, str) and token in _DUMMY_TOKENS


_DUMMY_TOKENS = frozenset(DUMMY_CODES.values())


def code_space(kind: CodeKind) -> int:
    """How many distinct codes of ``kind`` exist."""
    return len(SHORT_ALPHABET) ** SHORT_LENGTH if kind is CodeKind.SHORT else 2**122


def guess_probability(kind: CodeKind, live_codes: int, attempts: int) -> float:
    """Chance that ``attempts`` random guesses hit one of ``live_codes`` valid codes."""
    p_miss = 1.0 - live_codes / code_space(kind)
    return 1.0 - p_miss**attempts
