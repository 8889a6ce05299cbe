"""The scanner interface every backend implements, and the one place raw fields become Sightings."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from ble.collector import Sighting
from ble.payload import PayloadError, decode_service_data, overflow_has_robert

log = logging.getLogger(__name__)

SightingCallback = Callable[[Sighting], None]


def sighting_from_fields(
    address: str,
    rssi: int,
    robert_service_data: bytes | None,
    apple_data: bytes | None,
    counters: Counter[str] | None = None,
) -> Sighting | None:
    """A Sighting for an advertisement, or None if it is neither ours nor an overflow iPhone.

    Malformed service data under 0xFD64 is counted (``malformed``) and dropped, never raised:
    one broken sender must not stop the scanner.
    """
    if robert_service_data is not None:
        try:
            payload = decode_service_data(robert_service_data)
        except PayloadError as exc:
            if counters is not None:
                counters["malformed"] += 1
            log.debug("malformed 0xFD64 payload from %s: %s", address, exc)
            return None
        return Sighting(address, rssi, payload)
    if overflow_has_robert(apple_data):
        return Sighting(address, rssi, None, apple_overflow=True)
    return None


class HelloScanner(ABC):
    """Listens for StopCovid advertisements and reports each as a Sighting."""

    name: str = "abstract"

    def __init__(self) -> None:
        self.counters: Counter[str] = Counter()
        self.mode = "stopped"
        """How the scanner actually runs: 'passive', 'active' or 'stopped' (for messages)."""

    @abstractmethod
    async def start(self, on_sighting: SightingCallback) -> None:
        """Begin scanning; raises the backend's errors (mapped by ``ble.errors``)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop scanning and release what ``start`` took; safe to call twice."""
