"""Scanner backends, chosen by name like bleak's backends: 'bleak' (any OS) or 'bumble'."""

from __future__ import annotations

from typing import Any

from ble.scanner.base import HelloScanner, SightingCallback, sighting_from_fields

SCANNERS = ("bleak", "bumble")


def create_scanner(name: str, **options: Any) -> HelloScanner:
    """Build the named backend; its library is imported only now, so others need not exist."""
    if name == "bleak":
        from ble.scanner.bleak import BleakHelloScanner

        return BleakHelloScanner(**options)
    if name == "bumble":
        from ble.scanner.bumble import BumbleHelloScanner

        return BumbleHelloScanner(**options)
    raise ValueError(f"unknown scanner {name!r}; choose one of {', '.join(SCANNERS)}")


__all__ = ["SCANNERS", "HelloScanner", "SightingCallback", "create_scanner", "sighting_from_fields"]
