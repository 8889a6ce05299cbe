"""Fakes for the BLE tests: phones made of real protocol keys, a recording sink, virtual radios."""

from __future__ import annotations

import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from bumble import hci
from bumble.controller import Controller
from bumble.device import Device
from bumble.hci import Address
from bumble.link import LocalLink

from protocol.ebid import make_ebid, make_ecc
from protocol.epochs import REFERENCE_TIME_START, epoch_of
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


VIRTUAL_RSSI = -50
"""The RSSI bumble's virtual controller puts in every advertising report."""


class RssiController(Controller):  # type: ignore[misc]  # bumble is untyped
    """bumble's virtual controller, answering HCI Read RSSI (which real controllers support and
    the virtual one does not) with the same fixed RSSI it gives advertising reports."""

    def on_hci_read_rssi_command(
        self, command: hci.HCI_Read_RSSI_Command
    ) -> hci.HCI_Read_RSSI_ReturnParameters:
        return hci.HCI_Read_RSSI_ReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, handle=command.handle, rssi=VIRTUAL_RSSI
        )


@contextlib.asynccontextmanager
async def virtual_devices(count: int, read_rssi: bool = True) -> AsyncIterator[list[Device]]:
    """``count`` powered-on bumble Devices, each on its own virtual controller, one LocalLink.

    ``read_rssi=False`` keeps bumble's stock controller, which cannot tell a connection's RSSI.
    """
    link = LocalLink()
    devices = []
    for i in range(count):
        address = f"F0:F1:F2:F3:F4:{i:02X}"
        kind = RssiController if read_rssi else Controller
        controller = kind(f"controller{i}", link=link, public_address=address)
        devices.append(Device.with_hci(f"phone{i}", Address(address), controller, controller))
    for device in devices:
        await device.power_on()
    try:
        yield devices
    finally:
        for device in devices:
            await device.power_off()
