"""What the allocation needs of the bed service, declared here: COVID and other patients in
critical care per establishment. The bed service fulfils it in one process (``cli/wiring.py``
adapts its ``BedService``); across processes ``HttpCriticalCare`` reads
``GET /beds/api/v1/critical-care?territory=...`` with a bed-service API key of role
``reader``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import aiohttp

from kit.http import Unavailable


@dataclass(frozen=True, slots=True)
class Patients:
    """Patients in critical care in one establishment now."""

    finess: str
    name: str
    departement: str
    region: str
    covid: int
    other: int


class CriticalCareSource(Protocol):
    """Where the allocation reads patients in critical care."""

    async def patients(self, territory: str) -> list[Patients]:
        """Per establishment of ``territory`` (``fr``, ``reg:NN``)."""
        ...


class HttpCriticalCare:
    """The bed service's ``critical-care`` API, over HTTP."""

    def __init__(self, base_url: str, api_key: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = aiohttp.ClientTimeout(total=timeout)

    async def patients(self, territory: str) -> list[Patients]:
        url = f"{self.base_url}/beds/api/v1/critical-care"
        headers = {"Authorization": f"Bearer {self.api_key}"}
        try:
            async with (
                aiohttp.ClientSession(timeout=self.timeout) as session,
                session.get(url, params={"territory": territory}, headers=headers) as response,
            ):
                if response.status != 200:
                    raise Unavailable(f"the bed service answered {response.status}")
                body = await response.json()
        except (aiohttp.ClientError, TimeoutError):
            raise Unavailable("the bed service cannot be reached") from None
        return [
            Patients(
                e["finess"],
                e["name"],
                e["departement"],
                e["region"],
                int(e["covid"]),
                int(e["other"]),
            )
            for e in body["establishments"]
        ]


class NoCriticalCare:
    """No bed service: every establishment counts zero patients (the allocation then rests
    on stocks and reported use alone)."""

    async def patients(self, territory: str) -> list[Patients]:
        return []
