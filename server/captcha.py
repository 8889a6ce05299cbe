"""The registration gate: the captcha the apps show, or a proof of work, with its state in the
store [robert.md: the contract the real apps hold the server to].

The apps ask ``POST /captcha {type: "IMAGE"|"AUDIO", locale}`` for an id, fetch
``/captcha/{id}/image`` (a PNG of distorted characters, drawn by the ``captcha`` package) or
``/captcha/{id}/audio`` (a WAV of digits spoken in their language, ``server.speech``), and
register with what the person typed as ``captcha`` and the id as ``captchaId``.

Three modes (``Settings.captcha``):

* ``image``: image and audio captchas, what the apps use (the default);
* ``pow``: ``POST /captcha {type: "POW"}`` gives an id whose answer is a proof of work
  (``protocol.pow``): load tests and our own phones register without a person;
* ``off``: every kind is handed out and drawn, so an app's registration screen works, but any
  answer passes.

Every captcha is kept in the store (so any server process checks any captcha), used at most
once, void after ``captcha_lifetime`` seconds or ``captcha_attempts`` wrong answers. Per client
address, in this process's memory only and never logged, wrong answers (10 an hour) and
pictures or recordings asked for (30 an hour: drawing one costs milliseconds of CPU) are
rate-limited. A used, expired, voided or unknown id is 410.
"""

from __future__ import annotations

import asyncio
import hmac
import io
import re
import secrets
from collections.abc import Callable
from enum import StrEnum
from functools import lru_cache
from typing import Any

from captcha.audio import AudioCaptcha
from captcha.image import ImageCaptcha

from kit.http import Gone, HttpError, Malformed, TooManyRequests, Unauthorized, Unavailable
from kit.ratelimit import Buckets, Limit
from protocol.epochs import ntp_from_unix
from protocol.pow import is_solved
from server.speech import Voices, language_of
from server.store.base import Captcha, Store

IMAGE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
"""What an image captcha is made of: letters and digits without those people confuse (0/O,
1/I/L), as the short submission codes."""
AUDIO_ALPHABET = "0123456789"
"""What an audio captcha says: digits, spoken clearly in every language."""
ANSWER_LENGTH = 6
IMAGE_SIZE = (240, 90)
ID_PATTERN = re.compile(r"[0-9a-f]{32}")
"""A captcha id: 128 random bits, hexadecimal."""

FAILURES = Limit(burst=10, per_seconds=3600.0)
DRAWINGS = Limit(burst=30, per_seconds=3600.0)


class Kind(StrEnum):
    """What a captcha asks for, as ``POST /captcha`` names it (``type``)."""

    IMAGE = "IMAGE"
    AUDIO = "AUDIO"
    POW = "POW"


OFFERED = {
    "image": frozenset({Kind.IMAGE, Kind.AUDIO}),
    "pow": frozenset({Kind.POW}),
    "off": frozenset(Kind),
}
"""The kinds each mode hands out."""

KIND_NAMES = frozenset(name for kind in Kind for name in (kind.value, kind.value.lower()))
"""The ``type`` values taken: the apps' upper case (both send IMAGE or AUDIO) and, leniently,
all lower case; what openapi.json's enum lists, nothing in between ("Image")."""


def captcha_gone() -> HttpError:
    """410: the id is unknown, used, expired or voided by wrong answers."""
    return Gone("captcha unknown, used or expired: ask for another", "captcha_gone")


def normalise(answer: str) -> str:
    """What a person typed, as it is compared: upper case, without spaces."""
    return "".join(answer.split()).upper()


@lru_cache(maxsize=1)
def _image_drawer() -> ImageCaptcha:
    return ImageCaptcha(width=IMAGE_SIZE[0], height=IMAGE_SIZE[1])


class CaptchaGate:
    """Hands out and checks captchas of one mode over one store."""

    def __init__(
        self,
        store: Store,
        mode: str,
        voices: Voices,
        clock: Callable[[], float],
        lifetime: int = 300,
        max_attempts: int = 3,
        pow_difficulty: int = 16,
    ) -> None:
        self.store = store
        self.mode = mode
        self.offered = OFFERED[mode]
        self.voices = voices
        self.clock = clock
        self.lifetime = lifetime
        self.max_attempts = max_attempts
        self.difficulty = pow_difficulty if mode == "pow" else 0
        self.failures = Buckets(FAILURES)
        self.drawings = Buckets(DRAWINGS)

    def __repr__(self) -> str:
        return f"CaptchaGate(mode={self.mode!r})"

    def now(self) -> int:
        """NTP seconds now."""
        return ntp_from_unix(self.clock())

    # --- handing out -------------------------------------------------------------------------
    async def create(self, kind_name: object, locale: object, client: str) -> dict[str, Any]:
        """``POST /captcha``: a new captcha of the kind asked for; the JSON answer (201)."""
        if not isinstance(kind_name, str) or kind_name not in KIND_NAMES:
            raise Malformed("type must be IMAGE, AUDIO or POW")
        if isinstance(locale, dict | list):
            # The reference reads locale into a String: Jackson takes a number, a boolean or
            # null there but refuses an object or a list (both apps send a string).
            raise Malformed("locale must be a string")
        kind = Kind(kind_name.upper())
        if kind not in self.offered:
            offered = " or ".join(sorted(self.offered))
            raise Malformed(f"this server's captchas are {offered}", "captcha_type")
        if kind is not Kind.POW:
            self._take(self.drawings, client, "too many captchas asked for")
        alphabet = AUDIO_ALPHABET if kind is Kind.AUDIO else IMAGE_ALPHABET
        answer = "" if kind is Kind.POW else "".join(secrets.choice(alphabet) for _ in range(6))
        captcha = Captcha(
            secrets.token_hex(16),
            kind.lower(),
            answer,
            language_of(locale),
            self.now() + self.lifetime,
        )
        if not await self.store.create_captcha(captcha, self.lifetime):
            raise Unavailable("could not make a captcha; try again", "captcha_collision")
        body: dict[str, Any] = {"id": captcha.id}
        if kind is Kind.POW:
            body["difficulty"] = self.difficulty
        return body

    async def image(self, captcha_id: str) -> bytes:
        """``GET /captcha/{id}/image``: the PNG (of an image or audio captcha's answer)."""
        captcha = await self._shown(captcha_id)
        drawer = _image_drawer()
        loop = asyncio.get_running_loop()

        def draw() -> bytes:
            out = io.BytesIO()
            drawer.generate_image(captcha.answer).save(out, format="PNG")
            return out.getvalue()

        return await loop.run_in_executor(None, draw)

    async def audio(self, captcha_id: str) -> bytes:
        """``GET /captcha/{id}/audio``: the WAV, spoken in the captcha's language; 400
        ``captcha_type`` for an image captcha (its letters have no recording: ask for an
        audio captcha)."""
        captcha = await self._shown(captcha_id)
        if not set(captcha.answer) <= set(AUDIO_ALPHABET):
            raise Malformed("this is an image captcha: ask for an AUDIO one", "captcha_type")
        loop = asyncio.get_running_loop()

        def speak() -> bytes:
            voicedir = self.voices.voicedir(captcha.locale, AUDIO_ALPHABET)
            return bytes(AudioCaptcha(voicedir=voicedir).generate(captcha.answer))

        return await loop.run_in_executor(None, speak)

    async def _shown(self, captcha_id: str) -> Captcha:
        if not ID_PATTERN.fullmatch(captcha_id):
            raise Malformed("not a captcha id")
        captcha = await self.store.get_captcha(captcha_id, self.now())
        if captcha is None or captcha.kind == "pow":
            raise captcha_gone()
        return captcha

    # --- checking ----------------------------------------------------------------------------
    async def check(self, captcha_id: object, answer: object, client: str) -> Captcha | None:
        """Use the captcha ``captcha_id`` if ``answer`` is right: the captcha used (to give
        back with ``restore`` if the registration then fails), or None when the gate is off.
        401 for a wrong answer, 410 for an id that is no more, 429 for a client that failed
        too often."""
        if not isinstance(captcha_id, str) or not ID_PATTERN.fullmatch(captcha_id):
            raise Malformed("captchaId is not a captcha id")
        if not isinstance(answer, str) or len(answer) > 64:
            raise Malformed("captcha must be a short string")
        if self.mode == "off":  # shapes checked all the same: the API document is one
            return None
        self._take(self.failures, client, "too many wrong captcha answers")
        now = self.now()
        captcha = await self.store.get_captcha(captcha_id, now)
        if captcha is None:
            raise captcha_gone()
        if not self._right(captcha, answer):
            await self.store.fail_captcha(captcha_id, self.max_attempts)
            raise Unauthorized("wrong captcha answer", "bad_captcha")
        if not await self.store.use_captcha(captcha_id, now):
            raise captcha_gone()  # another request used it first
        self.failures.give_back(client)
        return captcha

    def _right(self, captcha: Captcha, answer: str) -> bool:
        if self.mode == "pow":
            return captcha.kind == "pow" and is_solved(captcha.id, answer, self.difficulty)
        if captcha.kind == "pow":
            return False
        return hmac.compare_digest(normalise(answer).encode(), captcha.answer.encode())

    async def restore(self, captcha: Captcha | None) -> None:
        """Put a used captcha back (its registration could not be stored): the person's answer
        stays good until the captcha would have expired anyway."""
        if captcha is not None:
            lifetime = captcha.expires - self.now()
            if lifetime > 0:
                await self.store.create_captcha(captcha, lifetime)

    @staticmethod
    def _take(buckets: Buckets, client: str, message: str) -> None:
        wait = buckets.take(client)
        if wait:
            raise TooManyRequests(message, "too_many_attempts", retry_after=int(wait) + 1)
