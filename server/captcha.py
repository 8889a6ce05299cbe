"""The registration gate: a stateless proof of work standing in for the reference's captcha.

``POST /api/v1/captcha`` hands out a challenge id signed by the server (HMAC over its issue
time and 16 random bytes); the phone solves it (``protocol.pow``) and registers with
``captchaId`` and ``captcha``. Any server process
can check a challenge without shared state; a used challenge is refused again by the process
that saw it (cheap replay protection; a replay elsewhere still costs the solver a fresh proof
after the challenge expires).
"""

from __future__ import annotations

import base64
import hmac
import secrets
from collections import OrderedDict
from collections.abc import Callable

from protocol.pow import is_solved

CHALLENGE_TTL = 300


class ProofOfWork:
    """Issue and check proof-of-work challenges."""

    def __init__(self, secret: bytes, difficulty: int, clock: Callable[[], float]) -> None:
        self._secret = secret
        self.difficulty = difficulty
        self._clock = clock
        self._used: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return f"ProofOfWork(difficulty={self.difficulty})"

    def challenge(self) -> dict[str, object]:
        """A fresh challenge as the JSON body of ``POST /captcha``."""
        body = int(self._clock()).to_bytes(8, "big") + secrets.token_bytes(16)
        tag = hmac.digest(self._secret, body, "sha256")[:16]
        challenge_id = base64.urlsafe_b64encode(body + tag).decode().rstrip("=")
        return {"id": challenge_id, "type": "pow-sha256", "difficulty": self.difficulty}

    def verify(self, challenge_id: object, answer: object) -> bool:
        """True once for a valid, unexpired, solved challenge."""
        if not isinstance(challenge_id, str) or not isinstance(answer, str):
            return False
        try:
            raw = base64.urlsafe_b64decode(challenge_id + "=" * (-len(challenge_id) % 4))
        except ValueError:
            return False
        if len(raw) != 40:
            return False
        body, tag = raw[:24], raw[24:]
        if not hmac.compare_digest(hmac.digest(self._secret, body, "sha256")[:16], tag):
            return False
        now = self._clock()
        if not 0 <= now - int.from_bytes(body[:8], "big") <= CHALLENGE_TTL:
            return False
        if not is_solved(challenge_id, answer, self.difficulty) or challenge_id in self._used:
            return False
        self._used[challenge_id] = now
        while self._used and next(iter(self._used.values())) < now - CHALLENGE_TTL:
            self._used.popitem(last=False)
        return True
