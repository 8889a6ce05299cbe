"""Opening a bumble Device on a transport string, shared by the bumble advertiser and scanner.

One controller both advertises and scans, so the CLI opens one Device and hands it to both.
Transports are bumble's: 'hci-socket:0' (Linux, needs CAP_NET_RAW/CAP_NET_ADMIN and the adapter
taken from bluetoothd), 'usb:0' (a dongle, libusb), 'serial:/dev/ttyUSB0' (an HCI UART board).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from ble.errors import NO_HCI_SOCKETS, AdapterMissing, BackendUnavailable, map_radio_error

DEFAULT_ADDRESS = "F0:F1:F2:F3:F4:F5"


@contextlib.asynccontextmanager
async def open_device(transport: str, address: str = DEFAULT_ADDRESS) -> AsyncIterator[Any]:
    """A powered-on bumble Device on ``transport``, closed on exit."""
    from bumble.device import Device
    from bumble.hci import Address
    from bumble.transport import open_transport

    try:
        hci_transport = await open_transport(transport)
    except Exception as exc:  # bumble raises bare Exception for some transports: map it here
        mapped = map_radio_error(exc)
        if mapped is not None:
            raise mapped from exc
        if "not supported" in str(exc):
            hint = NO_HCI_SOCKETS if transport.startswith("hci-socket") else None
            raise BackendUnavailable(f"{transport}: {exc}", hint) from exc
        raise AdapterMissing(f"cannot open bumble transport {transport!r}: {exc}") from exc
    try:
        device = Device.with_hci(
            "robert", Address(address), hci_transport.source, hci_transport.sink
        )
        await device.power_on()
        try:
            yield device
        finally:
            await device.power_off()
    finally:
        await hci_transport.close()
