"""Simulated phones of each kind the StopCovid apps ran on, on a bumble Device.

For the tests and the time-to-first-HELLO measurement (``ble.bench_first_hello``): each one
advertises and serves what that kind of phone did [robert.md: The contract the real apps hold
the server to, "Bluetooth, iPhones"; restated in issue 15; not checked here against the apps'
published source], and hears HELLOs the way that kind did:

- ``android``: service data under 0xFD64 (connectable), the characteristic served read/write;
- ``iphone-foreground``: the 0xFD64 UUID only, no service data (connectable), characteristic
  served: a scanner must connect and read;
- ``iphone-background``: Apple's overflow area only (connectable), characteristic served;
- ``iphone-writer``: an iPhone that takes a service-data advertiser for an Android phone and
  writes its 18-byte payload to its characteristic (once per peer per HELLO, and at most once per
  peer per ``write_period``);
  it advertises nothing of its own here, so the write is the only way it is heard.

Every kind records the service data it hears (Android and iOS both hand it to the app), and the
kinds that serve the characteristic record 18- or 19-byte writes. A simulated phone never
connects to read: the iPhone kinds exist to test *our* scanner's reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from bumble import gatt, hci
from bumble.att import ATT_Error, ErrorCode
from bumble.controller import Controller
from bumble.device import Advertisement, AdvertisingType, Device, Peer
from bumble.link import LocalLink

from ble.advertiser.bumble import hello_characteristic
from ble.calibration import DEFAULT_RX_GAIN, DEFAULT_TX_GAIN, calibrate_rssi
from ble.connecting import connect_or_cancel
from ble.interfaces import Clock, HelloSink, HelloSource
from ble.payload import (
    PAYLOAD_VERSION,
    SERVICE_UUID16,
    PayloadError,
    RobertPayload,
    WrittenPayload,
    decode_service_data,
    decode_written_value,
    encode_advertising_data,
    encode_overflow_advertising_data,
    encode_uuid_only_advertising_data,
    parse_advertising_data,
)
from ble.scanner.bumble import find_hello_characteristic
from protocol.hello import HELLO_SIZE

log = logging.getLogger(__name__)

VIRTUAL_RSSI = -50
"""The RSSI bumble's virtual controller puts in every advertising report."""
WRITE_TIMEOUT = 5.0
"""Seconds an iPhone writer gives the connection (bumble's own connect timeout), then as long
again to discovery, the write and the disconnection."""


class RssiController(Controller):
    """bumble's virtual controller, made to answer two commands as real controllers do and the
    virtual one does not: HCI Read RSSI (the same fixed RSSI it gives advertising reports), and
    HCI LE Create Connection Cancel (the pending connection attempt dropped and reported failed).
    """

    def on_hci_read_rssi_command(
        self, command: hci.HCI_Read_RSSI_Command
    ) -> hci.HCI_Read_RSSI_ReturnParameters:
        return hci.HCI_Read_RSSI_ReturnParameters(
            status=hci.HCI_ErrorCode.SUCCESS, handle=command.handle, rssi=VIRTUAL_RSSI
        )

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Core spec Vol 4, Part E, 7.8.13: with an attempt pending, Command Complete (success),
        then LE Connection Complete with status Unknown Connection Identifier; without one,
        Command Disallowed. bumble's controller answers success and keeps the attempt pending,
        so every later LE Create Connection is refused, as a real controller would refuse them
        if the host never cancelled."""
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # after the Command Complete the caller queues on return (both go through call_soon)
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)


@contextlib.asynccontextmanager
async def virtual_devices(count: int, read_rssi: bool = True) -> AsyncIterator[list[Device]]:
    """``count`` powered-on bumble Devices, each on its own virtual controller, one LocalLink.

    ``read_rssi=False`` keeps bumble's stock controller, which cannot tell a connection's RSSI.
    """
    link = LocalLink()  # type: ignore[no-untyped-call]  # bumble leaves it unannotated
    devices = []
    for i in range(count):
        address = f"F0:F1:F2:F3:F4:{i:02X}"
        kind = RssiController if read_rssi else Controller
        controller = kind(f"controller{i}", link=link, public_address=address)
        devices.append(Device.with_hci(f"phone{i}", hci.Address(address), controller, controller))
    for device in devices:
        await device.power_on()
    try:
        yield devices
    finally:
        for device in devices:
            await device.power_off()


KINDS = ("android", "iphone-foreground", "iphone-background", "iphone-writer")
SERVES_GATT = ("android", "iphone-foreground", "iphone-background")


@dataclass(frozen=True, slots=True)
class SimHeard:
    """One HELLO a simulated phone got: how, when (NTP s), calibrated RSSI, loop time."""

    hello: bytes
    received_ntp: int
    rssi_calibrated: int
    how: str
    at: float


class SimulatedPhone:
    """A phone of one kind on a powered-on bumble Device (virtual or real)."""

    def __init__(
        self,
        kind: str,
        device: Device,
        source: HelloSource,
        clock: Clock,
        *,
        sink: HelloSink | None = None,
        tx_gain: int = DEFAULT_TX_GAIN,
        rx_gain: int = DEFAULT_RX_GAIN,
        refresh: float = 0.5,
        write_period: float = 2.0,
        interval_ms: float = 100.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"kind is one of {', '.join(KINDS)}")
        self.kind = kind
        self.device = device
        self.source = source
        self.clock = clock
        self.sink = sink
        self.tx_gain = tx_gain
        self.rx_gain = rx_gain
        self.refresh = refresh
        self.write_period = write_period
        self.interval_ms = interval_ms
        self.heard: list[SimHeard] = []
        self.sent: set[bytes] = set()
        """Every HELLO this phone put on the air, served or wrote."""
        self.counters: Counter[str] = Counter()
        self.started_at: float | None = None
        self._seen: set[bytes] = set()
        self._last_write: dict[str, float] = {}
        self._written: dict[str, bytes] = {}
        self._writing: set[str] = set()
        self._last_rssi: dict[str, int] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._one_connection = asyncio.Lock()
        self._running = False

    def payload(self) -> RobertPayload | None:
        """The payload of this moment (the HELLO's time field changes every second)."""
        hello = self.source.current_hello(self.clock())
        if hello is None:
            return None
        self.sent.add(bytes(hello))
        return RobertPayload(bytes(hello), PAYLOAD_VERSION, self.tx_gain)

    def _record(self, hello: bytes, rssi_calibrated: int, how: str) -> None:
        if len(hello) != HELLO_SIZE or hello in self._seen:
            self.counters["duplicates"] += 1
            return
        self._seen.add(hello)
        now = self.clock()
        self.heard.append(
            SimHeard(hello, now, rssi_calibrated, how, asyncio.get_running_loop().time())
        )
        if self.sink is not None:
            self.sink.record_hello(hello, now, rssi_calibrated)

    # --- peripheral side -------------------------------------------------------------------
    def _read(self, _connection: Any) -> bytes:
        self.counters["read_by_peer"] += 1
        payload = self.payload()
        return b"" if payload is None else payload.to_service_data()

    def _write(self, connection: Any, value: bytes) -> None:
        try:
            written = decode_written_value(bytes(value))
        except PayloadError as exc:
            self.counters["write_refused"] += 1
            raise ATT_Error(ErrorCode.INVALID_ATTRIBUTE_LENGTH) from exc
        rssi = written.rssi_calibrated
        if rssi is None:
            raw = self._last_rssi.get(str(connection.peer_address))
            if raw is None:
                self.counters["write_no_rssi"] += 1
                return
            rssi = calibrate_rssi(raw, written.payload.tx_gain, self.rx_gain)
        self._record(written.payload.hello, rssi, "written-to-me")

    def _advertising_data(self) -> bytes | None:
        if self.kind == "android":
            payload = self.payload()
            return None if payload is None else encode_advertising_data(payload)
        if self.kind == "iphone-foreground":
            return encode_uuid_only_advertising_data()
        if self.kind == "iphone-background":
            return encode_overflow_advertising_data()
        return None  # the writer is heard through its writes only

    async def _advertise(self) -> None:
        data = self._advertising_data()
        if self.device.is_advertising:
            await self.device.stop_advertising()
        if data is None:
            return
        await self.device.start_advertising(
            advertising_type=AdvertisingType.UNDIRECTED_CONNECTABLE_SCANNABLE,
            advertising_data=data,
            auto_restart=True,
            advertising_interval_min=self.interval_ms,
            advertising_interval_max=self.interval_ms,
        )

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(self.refresh)
            if self.kind == "android":  # the others' advertisements carry no HELLO
                with contextlib.suppress(Exception):  # busy controller: next round
                    await self._advertise()

    # --- central side ----------------------------------------------------------------------
    def _on_advertisement(self, advertisement: Advertisement) -> None:
        try:
            fields = parse_advertising_data(advertisement.data_bytes)
        except PayloadError:
            return
        address = str(advertisement.address)
        self._last_rssi[address] = advertisement.rssi
        data = fields.service_data16.get(SERVICE_UUID16)
        if data is None:
            return
        try:
            payload = decode_service_data(data)
        except PayloadError:
            self.counters["malformed"] += 1
            return
        rssi = calibrate_rssi(advertisement.rssi, payload.tx_gain, self.rx_gain)
        self._record(payload.hello, rssi, "advertisement")
        if self.kind == "iphone-writer" and advertisement.is_connectable:
            self._maybe_write(advertisement.address)

    def _maybe_write(self, address: Any) -> None:
        key = str(address)
        now = asyncio.get_running_loop().time()
        hello = self.source.current_hello(self.clock())
        if (
            hello is None
            or hello == self._written.get(key)
            or now - self._last_write.get(key, -1e9) < self.write_period
            or key in self._writing
        ):
            return
        self._last_write[key] = now
        self._writing.add(key)
        task = asyncio.get_running_loop().create_task(self._write_to(address, bytes(hello)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _write_to(self, address: Any, hello: bytes) -> None:
        key = str(address)
        try:
            async with self._one_connection:
                # bumble's own connect timeout, never an outer bound: cut short from outside,
                # bumble's connect would leave the attempt pending in the controller
                connection = await connect_or_cancel(
                    self.device, address, WRITE_TIMEOUT, self.counters
                )
                async with asyncio.timeout(WRITE_TIMEOUT):  # discovery, write, disconnection
                    try:
                        characteristic = await find_hello_characteristic(Peer(connection))
                        payload = RobertPayload(hello, PAYLOAD_VERSION, self.tx_gain)
                        self.sent.add(hello)
                        await characteristic.write_value(
                            WrittenPayload(payload).to_bytes(), with_response=True
                        )
                    finally:
                        await connection.disconnect()
        except Exception as exc:  # a failed write is tried again (same HELLO) after write_period
            self.counters["write_failed"] += 1
            log.info("simulated %s: writing to %s failed: %s", self.kind, address, exc)
            return
        finally:
            self._writing.discard(key)
        self._written[key] = hello  # once per HELLO: the next write waits for a new one
        self.counters["wrote"] += 1

    # --- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        """Serve the characteristic (kinds that do), advertise, scan."""
        self.started_at = asyncio.get_running_loop().time()
        self._running = True
        if self.kind in SERVES_GATT:
            characteristic = hello_characteristic(self._read, self._write)  # as ours: READ, WRITE
            self.device.add_service(gatt.Service(f"{SERVICE_UUID16:04X}", [characteristic]))
        await self._advertise()
        self.device.on("advertisement", self._on_advertisement)
        await self.device.start_scanning(active=False, filter_duplicates=False)
        task = asyncio.get_running_loop().create_task(self._refresh_loop())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def stop(self) -> None:
        """Stop everything this phone started."""
        if not self._running:
            return
        self._running = False
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        self.device.remove_listener("advertisement", self._on_advertisement)
        for stopping in (self.device.stop_scanning, self.device.stop_advertising):
            with contextlib.suppress(Exception):
                await stopping()
