"""What the radio needs from a phone, as Protocols: the real ``phone.client.Phone`` fits both.

Kept structural so ``ble/`` never imports the phone, and tests can pass small fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

Clock = Callable[[], int]
"""Returns the current time in whole NTP seconds [robert.md: Time]; injected for tests."""


@runtime_checkable
class HelloSource(Protocol):
    """Gives the HELLO to broadcast now."""

    def current_hello(self, now_ntp: int) -> bytes | None:
        """16 bytes built for ``now_ntp``, or None when the phone has no EBID for this epoch."""
        ...


@runtime_checkable
class HelloSink(Protocol):
    """Stores HELLOs heard from other phones."""

    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        """Keep one received HELLO (16 bytes) with its reception time and calibrated RSSI."""
        ...
