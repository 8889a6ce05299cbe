"""Fakes for the BLE tests: phones made of real protocol keys, a recording sink, virtual radios."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from bumble.device import AdvertisingType, Device

from ble.payload import encode_uuid_only_advertising_data
from ble.scanner.bumble import BumbleHelloScanner
from ble.simulated import VIRTUAL_RSSI, virtual_devices
from protocol.ebid import make_ebid, make_ecc
from protocol.epochs import REFERENCE_TIME_START, epoch_of, ntp_from_unix
from protocol.hello import build_hello
from protocol.types import EbidKey, FederationKey, MacKey, id_a

COUNTRY_FR = 0x21
NOW = REFERENCE_TIME_START + 400 * 86_400 + 123  # some time well after the service start


@dataclass
class FakePhone:
    """A HelloSource with real keys: builds HELLOs like the Phone will (EBID per epoch)."""

    k_a: MacKey
    k_s: EbidKey
    k_g: FederationKey
    owner: bytes
    time_start: int = REFERENCE_TIME_START
    asked: list[int] = field(default_factory=list)

    def ebid_at(self, now_ntp: int) -> bytes:
        return make_ebid(self.k_s, epoch_of(now_ntp, self.time_start), id_a(self.owner))

    def current_hello(self, now_ntp: int) -> bytes | None:
        self.asked.append(now_ntp)
        ebid = self.ebid_at(now_ntp)
        ecc = make_ecc(self.k_g, ebid, COUNTRY_FR)
        return build_hello(self.k_a, ecc, ebid, now_ntp).to_bytes()


@dataclass
class RecordingSink:
    """A HelloSink that keeps every call."""

    records: list[tuple[bytes, int, int]] = field(default_factory=list)

    def record_hello(self, hello: bytes, received_ntp: int, rssi_calibrated: int) -> None:
        self.records.append((hello, received_ntp, rssi_calibrated))


@pytest.fixture
def make_phone() -> object:
    """Phones sharing the server keys K_S and K_G, each with its own ID_A and K_A."""
    rng = random.Random(2020)
    k_s = EbidKey(rng.randbytes(24))
    k_g = FederationKey(rng.randbytes(32))

    def make() -> FakePhone:
        return FakePhone(MacKey(rng.randbytes(32)), k_s, k_g, rng.randbytes(5))

    return make


async def wait_for(condition: Callable[[], object], limit: float, what: str) -> None:
    """Poll ``condition`` every 20 ms; fail the test if it is still false after ``limit`` s."""
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not condition():
        assert loop.time() < end, f"{what}: not within {limit} s"
        await asyncio.sleep(0.02)


def wall_clock() -> int:
    """The phones' clock in the BLE tests: now, in NTP seconds."""
    return ntp_from_unix(time.time())


async def advertise_uuid_only(device: Device) -> None:
    """Advertise as a foreground iPhone does (the ROBERT service UUID alone, connectable),
    every 50 ms."""
    await device.start_advertising(
        advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
        advertising_data=encode_uuid_only_advertising_data(),
        auto_restart=True,
        advertising_interval_min=50.0,
        advertising_interval_max=50.0,
    )


async def cancel_a_connect(scanner: BumbleHelloScanner, device: Device, address: Any) -> None:
    """Start ``scanner``'s connect to ``address`` from ``device``, cancel it while the attempt
    is pending in the controller (as a read's bound or ``stop`` does), and see it end
    cancelled."""
    connecting = asyncio.get_running_loop().create_task(scanner._connect(address))
    await wait_for(lambda: device.is_le_connecting, 5.0, "no connection attempt")
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting


__all__ = ["VIRTUAL_RSSI", "virtual_devices"]  # the virtual radio lives in ble.simulated
