"""What the board needs of other services, declared here, read through their APIs only:

- SI-VIC's hospital counts of a territory: ``GET /sivic/api/v1/counts?dep=75`` (or
  ``?region=11``, or nothing for France) with an SI-VIC API key of role ``board-reader``;
- the bed service's tension of a territory: ``GET /beds/api/v1/tension?territory=dep:75``
  with a bed-service API key of role ``reader``.

Across processes the ``Http*`` clients call them (``SAMU_SIVIC_URL``/``KEY``,
``SAMU_BEDS_URL``/``KEY``); in one process (``robert dev``) ``cli/wiring.py`` may hand over
an adapter of the other service's object. Whatever fails, the board shows "not available":
a source answers None, never raises.
"""

from __future__ import annotations

import logging
from typing import Protocol

import aiohttp

log = logging.getLogger("samu.links")

COUNT_FIELDS = (
    "dep", "region", "date", "hosp", "rea", "conv", "ssr_usld", "other", "rad", "dc",
    "incid_hosp", "incid_rea", "incid_dc", "incid_rad", "as_of",
)  # fmt: skip
TENSION_FIELDS = (
    "territory", "covid_critical", "initial_capacity", "tension_rate", "occupied",
    "available", "stale_units", "as_of",
)  # fmt: skip


class CountsSource(Protocol):
    """SI-VIC's counts of hospitalised patients of a territory."""

    async def counts(self, departement: str | None) -> dict[str, object] | None:
        """The counts of ``departement`` (None: France), or None when unavailable."""
        ...


class TensionSource(Protocol):
    """The bed service's critical-care tension of a territory."""

    async def tension(self, departement: str | None) -> dict[str, object] | None:
        """The tension of ``departement`` (None: France), or None when unavailable."""
        ...


class Unavailable:
    """No such service configured: always "not available"."""

    async def counts(self, departement: str | None) -> dict[str, object] | None:
        return None

    async def tension(self, departement: str | None) -> dict[str, object] | None:
        return None


async def _get_json(
    url: str, key: str, params: dict[str, str], fields: tuple[str, ...], timeout: float
) -> dict[str, object] | None:
    """The JSON object at ``url`` with the fields expected, or None (logged, never raised)."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url, params=params, headers={"Authorization": f"Bearer {key}"}) as r,
        ):
            if r.status != 200:
                log.warning("%s answered %s", url, r.status)
                return None
            body = await r.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        log.warning("%s cannot be read: %s", url, type(exc).__name__)
        return None
    if not isinstance(body, dict) or any(f not in body for f in fields):
        log.warning("%s answered without the expected fields", url)
        return None
    return {f: body[f] for f in fields}


class HttpCounts:
    """SI-VIC's ``counts`` API over HTTP."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 3.0) -> None:
        self.url = f"{base_url.rstrip('/')}/sivic/api/v1/counts"
        self.api_key = api_key
        self.timeout = timeout

    async def counts(self, departement: str | None) -> dict[str, object] | None:
        params = {"dep": departement} if departement else {}
        return await _get_json(self.url, self.api_key, params, COUNT_FIELDS, self.timeout)


class HttpTension:
    """The bed service's ``tension`` API over HTTP."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 3.0) -> None:
        self.url = f"{base_url.rstrip('/')}/beds/api/v1/tension"
        self.api_key = api_key
        self.timeout = timeout

    async def tension(self, departement: str | None) -> dict[str, object] | None:
        params = {"territory": f"dep:{departement}" if departement else "fr"}
        return await _get_json(self.url, self.api_key, params, TENSION_FIELDS, self.timeout)


class SafeCounts:
    """An in-process counts source whose failures read as "not available"."""

    def __init__(self, inner: CountsSource) -> None:
        self.inner = inner

    async def counts(self, departement: str | None) -> dict[str, object] | None:
        try:
            return await self.inner.counts(departement)
        except Exception:  # another service's failure reads as "not available" here
            log.exception("the in-process counts source failed")
            return None


class SafeTension:
    """An in-process tension source whose failures read as "not available"."""

    def __init__(self, inner: TensionSource) -> None:
        self.inner = inner

    async def tension(self, departement: str | None) -> dict[str, object] | None:
        try:
            return await self.inner.tension(departement)
        except Exception:  # another service's failure reads as "not available" here
            log.exception("the in-process tension source failed")
            return None
