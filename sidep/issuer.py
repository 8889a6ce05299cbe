"""How SI-DEP gets a long submission code for a positive: one narrow interface to the code
service (``codes/``), which SI-DEP never imports.

In one process (``robert dev``) the command package hands an adapter over the code service
object (``cli/wiring.py``); across processes, ``HttpCodeIssuer`` calls
``POST /codes/api/v1/codes`` with an API key of role ``lab`` of the organisation ``SIDEP``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

import aiohttp
import orjson

ORG_NAME = "SIDEP"
"""The organisation SI-DEP issues codes as, in the code service."""


@dataclass(frozen=True, slots=True)
class IssuedCode:
    """A long code, its signed deep link (what the QR code holds) and its expiry."""

    code: str
    link: str
    expires_at: datetime


class CodeUnavailable(Exception):
    """The code service could not be reached or failed: try again later."""


class CodeRefused(Exception):
    """The code service refused this request for good (e.g. a test date too old)."""


class CodeIssuer(Protocol):
    """What SI-DEP needs of the code service."""

    async def issue_long(self, test_date: date) -> IssuedCode:
        """One long code for a test taken on ``test_date``."""
        ...


class HttpCodeIssuer:
    """``POST {base}/codes/api/v1/codes`` ``{"type": "long", "testDate", "count": 1}``."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def __repr__(self) -> str:
        return f"HttpCodeIssuer({self.base_url!r})"

    async def issue_long(self, test_date: date) -> IssuedCode:
        body = {"type": "long", "testDate": test_date.isoformat(), "count": 1}
        try:
            async with (
                aiohttp.ClientSession(timeout=self._timeout) as session,
                session.post(
                    f"{self.base_url}/codes/api/v1/codes",
                    data=orjson.dumps(body),
                    headers=self._headers,
                ) as response,
            ):
                raw = await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise CodeUnavailable(type(exc).__name__) from None
        if status == 400:
            raise CodeRefused("code service: HTTP 400")
        if status != 200:
            raise CodeUnavailable(f"code service: HTTP {status}")
        try:
            answer = orjson.loads(raw)
            first = answer["codes"][0]
            return IssuedCode(
                str(first["code"]),
                str(first["link"]),
                datetime.fromisoformat(str(first["expiresAt"]).replace("Z", "+00:00")),
            )
        except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError):
            raise CodeUnavailable("code service: unreadable answer") from None
