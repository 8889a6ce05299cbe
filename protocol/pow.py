"""The registration proof of work: the gate our own phones and load tests pass instead of a
captcha [robert.md: Registration; the reference used a captcha service].

The server hands out a challenge id; the phone finds an answer such that
``SHA-256(id || answer)`` starts with ``difficulty`` zero bits (about ``2**difficulty`` hashes),
and the server checks it with one hash. How ids are made and remembered is the server's.
"""

from __future__ import annotations

import hashlib

MAX_ANSWER_LENGTH = 32


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits start ``digest``."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def work_digest(challenge_id: str, answer: str) -> bytes:
    """SHA-256 of the challenge id followed by the answer."""
    return hashlib.sha256(challenge_id.encode() + answer.encode()).digest()


def solve(challenge_id: str, difficulty: int) -> str:
    """An answer to a challenge (what a phone computes; ~2**difficulty hashes)."""
    prefix = challenge_id.encode()
    nonce = 0
    while leading_zero_bits(hashlib.sha256(prefix + str(nonce).encode()).digest()) < difficulty:
        nonce += 1
    return str(nonce)


def is_solved(challenge_id: str, answer: str, difficulty: int) -> bool:
    """True if ``answer`` solves the challenge at ``difficulty`` (an answer is at most 32
    characters, so checking costs one hash whatever a client sends)."""
    if len(answer) > MAX_ANSWER_LENGTH:
        return False
    return leading_zero_bits(work_digest(challenge_id, answer)) >= difficulty
