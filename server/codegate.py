"""How the ROBERT server checks and consumes a submission code: one narrow interface to the
code service (``codes/``), which the server never imports.

The code service answers ``consume`` with one of ``accepted``, ``unknown``, ``used``,
``expired``, ``revoked``; only ``accepted`` lets a report through, and exactly one of
concurrent consumers of a code gets it. ``release`` gives a consumed code back when the report
it let through could not be queued, so the person can try again.

Two ways to reach it: in-process (``robert dev`` and the embedded default: the command package
hands the code service itself, which has these two methods) or over HTTP (``HttpCodeGate``,
production: each service its own process).
"""

from __future__ import annotations

from typing import Protocol

import aiohttp
import orjson

from kit.http import Unavailable

ACCEPTED = "accepted"
OUTCOMES = frozenset({ACCEPTED, "unknown", "used", "expired", "revoked"})


class CodeGate(Protocol):
    """What the report path needs of the code service (opened and closed with the app)."""

    async def open(self) -> None:
        """Make ready (open a database, a connection pool)."""
        ...

    async def close(self) -> None:
        """Release what ``open`` took."""
        ...

    async def consume(self, code: str) -> str:
        """Use ``code`` (canonical form) once: its outcome, ``accepted`` at most once."""
        ...

    async def release(self, code: str) -> None:
        """Make a consumed code usable again (its report could not be queued)."""
        ...


class HttpCodeGate:
    """The code service's ``/codes/api/v1/consume`` and ``/release``, with a machine API key
    of role ``robert-server``. A code service that does not answer makes the report a 503
    (``Retry-After``): the person's code is untouched and they can try again."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
        }
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:
        return f"HttpCodeGate({self.base_url!r})"

    async def open(self) -> None:
        """Nothing to do: the session is made on first use."""

    async def _post(self, path: str, code: str) -> dict[str, object]:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                f"{self.base_url}/codes/api/v1/{path}",
                data=orjson.dumps({"code": code}),
                headers=self._headers,
            ) as response:
                body = await response.read()
                if response.status != 200:
                    raise Unavailable("the code service refused the request", "codes_unavailable")
                answer = orjson.loads(body)
        except (TimeoutError, aiohttp.ClientError, orjson.JSONDecodeError):
            raise Unavailable("the code service is unavailable", "codes_unavailable") from None
        if not isinstance(answer, dict):
            raise Unavailable("the code service answered nonsense", "codes_unavailable")
        return answer

    async def consume(self, code: str) -> str:
        """POST /codes/api/v1/consume {code} -> {outcome}."""
        outcome = (await self._post("consume", code)).get("outcome")
        if outcome not in OUTCOMES:
            raise Unavailable("the code service answered nonsense", "codes_unavailable")
        return str(outcome)

    async def release(self, code: str) -> None:
        """POST /codes/api/v1/release {code}."""
        await self._post("release", code)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class NoCodeGate:
    """For processes that never take a report (``robert worker``): any use is a 503."""

    async def open(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        """Nothing to close."""

    async def consume(self, code: str) -> str:
        """Refuse: this process has no code service."""
        raise Unavailable("this process takes no reports", "codes_unavailable")

    async def release(self, code: str) -> None:
        """Nothing was consumed here."""
