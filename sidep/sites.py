"""The test sites near a positive person, for their notice: asked of the citizens service
over HTTP (its public contract, docs/citizens.md: ``GET {base}/api/v1/sites?postcode=&limit=``
answering ``{"sites": [{"name", "address", "postcode", "commune", "distance_km", ...}]}``),
never imported. Best effort: unset, unreachable, slow (``timeout``, 2 s) or answering
anything else, the notice goes out without the sites, never later and never failing.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

log = logging.getLogger("sidep")

SITES_LIMIT = 3
SITES_TIMEOUT = 2.0


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
    ``http://127.0.0.1:8080/citizens``)."""

    def __init__(
        self, base_url: str, *, limit: int = SITES_LIMIT, timeout: float = SITES_TIMEOUT
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.limit = limit
        self.timeout = timeout
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
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        url = f"{self.base_url}/api/v1/sites"
        params = {"postcode": postcode.strip(), "limit": str(self.limit)}
        try:
            async with self._session.get(url, params=params) as response:
                if response.status != 200:
                    log.warning("test sites: the citizens service answered %d", response.status)
                    return ()
                body = await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            log.warning("test sites: the citizens service did not answer (%s)", type(exc).__name__)
            return ()
        found = body.get("sites") if isinstance(body, dict) else None
        if not isinstance(found, list):
            log.warning("test sites: the citizens service's answer has no list of sites")
            return ()
        sites = (_site(item) for item in found[: self.limit])
        return tuple(s for s in sites if s is not None)

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None
