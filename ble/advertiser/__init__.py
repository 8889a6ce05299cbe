"""Advertiser backends, chosen by name: 'bluez' (Linux, D-Bus) or 'bumble' (any HCI controller)."""

from __future__ import annotations

from typing import Any

from ble.advertiser.base import HelloAdvertiser

ADVERTISERS = ("bluez", "bumble")


def create_advertiser(name: str, **options: Any) -> HelloAdvertiser:
    """Build the named backend, importing its library only now."""
    if name == "bluez":
        from ble.advertiser.bluez import BlueZAdvertiser

        return BlueZAdvertiser(**options)
    if name == "bumble":
        from ble.advertiser.bumble import BumbleAdvertiser

        return BumbleAdvertiser(**options)
    raise ValueError(f"unknown advertiser {name!r}; choose one of {', '.join(ADVERTISERS)}")


__all__ = ["ADVERTISERS", "HelloAdvertiser", "create_advertiser"]
