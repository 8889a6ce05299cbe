"""The test sites near a positive person, for their notice: asked of the citizens service
over HTTP (its public contract, docs/citizens.md: ``GET {base}/api/v1/sites?postcode=&limit=``
answering ``{"sites": [{"name", "address", "postcode", "commune", "distance_km", ...}]}``),
never imported. Best effort: unset, unreachable, slow (``timeout``, 2 s) or answering
anything else, the notice goes out without the sites, never failing. After a failure the
finder asks nothing for ``pause`` (60 s) and answers no sites at once, so a hung service costs
one timeout a minute, not one per notice (the notices are handled one after another).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger("sidep")

SITES_LIMIT = 3
SITES_TIMEOUT = 2.0
SITES_PAUSE = 60.0


@dataclass(frozen=True, slots=True)
class TestSite:
    """A test site as the notice shows it."""

    __test__ = False  # not a pytest class

    name: str
    address: str
    postcode: str
    commune: str
    distance_km: float | None


@dataclass(frozen=True, slots=True)
class NearbySites:
    """What the notice says about testing near the person: up to three sites (none when the
    service did not answer) and the link to the search page of their postcode."""

    sites: tuple[TestSite, ...]
    link: str


def _site(item: Any) -> TestSite | None:
    """The site of one item of the answer, or None when it is not one."""
    if not isinstance(item, dict):
        return None
    name, address = item.get("name"), item.get("address")
    if not isinstance(name, str) or not name.strip() or not isinstance(address, str):
        return None
    distance = item.get("distance_km")
    km = (
        float(distance)
        if isinstance(distance, int | float) and not isinstance(distance, bool)
        and math.isfinite(distance) and distance >= 0
        else None
    )  # fmt: skip
    postcode, commune = item.get("postcode"), item.get("commune")
    return TestSite(
        name.strip()[:120],
        address.strip()[:200],
        postcode.strip()[:10] if isinstance(postcode, str) else "",
        commune.strip()[:80] if isinstance(commune, str) else "",
        km,
    )


class SiteFinder:
    """The citizens service's test sites near a postcode (``base_url`` such as
    ``http://127.0.0.1:8080/citizens``). After any failure it asks nothing for ``pause``
    seconds (by ``clock``, monotonic) and answers no sites."""

    def __init__(
        self,
        base_url: str,
        *,
        limit: int = SITES_LIMIT,
        timeout: float = SITES_TIMEOUT,
        pause: float = SITES_PAUSE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limit = limit
        self.timeout = timeout
        self.pause = pause
        self.clock = clock
        self._paused_until: float | None = None
        self._session: aiohttp.ClientSession | None = None

    def link(self, postcode: str | None) -> str:
        """The citizens' search page, on the postcode when there is one."""
        page = f"{self.base_url}/sites/"
        return f"{page}?where={quote(postcode.strip(), safe='')}" if postcode else page

    async def near(self, postcode: str | None) -> NearbySites:
        """Up to ``limit`` sites nearest the postcode, and the link; no sites on any failure."""
        return NearbySites(await self._sites(postcode), self.link(postcode))

    async def _sites(self, postcode: str | None) -> tuple[TestSite, ...]:
        if not postcode or not postcode.strip():
            return ()
        if self._paused_until is not None:
            if self.clock() < self._paused_until:
                return ()
            self._paused_until = None
        sites = await self._ask(postcode.strip())
        if sites is None:
            self._paused_until = self.clock() + self.pause
            return ()
        return sites

    async def _ask(self, postcode: str) -> tuple[TestSite, ...] | None:
        """The sites of the answer, or None on any failure of the service (logged: its kind,
        never the postcode). Every exception counts: an odd answer (a huge integer, JSON
        nested too deep) must not leave the notice pending at the head of the queue. A
        postcode the service refuses or cannot place (400, 404) is this person's, not an
        outage: no sites for this notice, and the next is asked as usual."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        url = f"{self.base_url}/api/v1/sites"
        params = {"postcode": postcode, "limit": str(self.limit)}
        try:
            async with self._session.get(url, params=params) as response:
                if response.status in (400, 404):
                    log.info("test sites: the citizens service cannot place a postcode")
                    return ()
                if response.status != 200:
                    log.warning("test sites: the citizens service answered %d", response.status)
                    return None
                body = await response.json(content_type=None)
        except Exception as exc:  # best effort: any failure means no sites
            log.warning("test sites: the citizens service did not answer (%s)", type(exc).__name__)
            return None
        try:
            found = body.get("sites") if isinstance(body, dict) else None
            if not isinstance(found, list):
                log.warning("test sites: the citizens service's answer has no list of sites")
                return None
            sites = (_site(item) for item in found[: self.limit])
            return tuple(s for s in sites if s is not None)
        except Exception as exc:  # an answer we cannot read: no sites
            log.warning("test sites: unreadable answer of the citizens service (%s)",
                        type(exc).__name__)  # fmt: skip
            return None

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
