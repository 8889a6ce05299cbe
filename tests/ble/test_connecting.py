"""``ble.connecting``: a connect cut short from outside never leaves its attempt pending in the
controller, for the simulated iPhone's writes as for the scanner's reads, and an attempt the
controller stays silent on after our Cancel does not block the next connect either.

The scanner's own cases (Cancel sent, a connection made just before it let go) are in
``test_gatt.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bumble import hci

import ble.connecting
from ble.scanner.bumble import BumbleHelloScanner
from ble.simulated import RssiController, SimulatedPhone
from tests.ble.conftest import (
    advertise_uuid_only,
    cancel_a_connect,
    virtual_devices,
    wait_for,
    wall_clock,
)

NOBODY = hci.Address("F0:F1:F2:F3:F4:09")  # no device at this address: the attempt stays pending


async def test_a_write_cut_short_by_stop_leaves_no_attempt_pending(make_phone: Any) -> None:
    """An iPhone writer stopped while connecting (``stop`` cancels its write): the attempt is
    cancelled in the controller, so the next writer on that radio still writes to an Android
    phone. Cut short from outside, bumble's connect left the attempt pending and the controller
    refused every later connection (Command Disallowed)."""
    async with virtual_devices(2) as (mine, android_device):
        writer = SimulatedPhone("iphone-writer", mine, make_phone(), wall_clock)
        await writer.start()
        writer._maybe_write(NOBODY)
        await wait_for(lambda: mine.is_le_connecting, 5.0, "no connection attempt")
        await writer.stop()
        assert writer.counters["connect_cancelled"] == 1
        assert writer.counters["write_failed"] == 0  # cancelled, not failed

        android = SimulatedPhone("android", android_device, make_phone(), wall_clock)
        await android.start()
        next_writer = SimulatedPhone("iphone-writer", mine, make_phone(), wall_clock)
        await next_writer.start()
        try:
            await wait_for(lambda: next_writer.counters["wrote"] >= 1, 5.0, "no write")
        finally:
            await next_writer.stop()
            await android.stop()
    assert next_writer.counters["write_failed"] == 0, next_writer.counters


def first_cancel_unreported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller accepts the first LE Create Connection Cancel and then reports nothing
    and keeps the attempt (as bumble's stock controller always does); later ones work."""
    honest = RssiController.on_hci_le_create_connection_cancel_command
    calls = []

    def silent_once(
        controller: RssiController, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        calls.append(command)
        if len(calls) == 1:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)
        return honest(controller, command)

    monkeypatch.setattr(RssiController, "on_hci_le_create_connection_cancel_command", silent_once)
    monkeypatch.setattr(ble.connecting, "CANCEL_TIMEOUT", 0.2)


async def test_an_attempt_the_controller_is_silent_on_does_not_block_the_next_connect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No outcome after our Cancel: the attempt is given up on (counted), and the next connect
    first cancels it again, so it is not refused for an attempt nobody waits for."""
    first_cancel_unreported(monkeypatch)
    async with virtual_devices(2) as (mine, peer):
        await advertise_uuid_only(peer)
        scanner = BumbleHelloScanner(mine, read_timeout=30.0)
        await cancel_a_connect(scanner, mine, NOBODY)
        assert scanner.counters["connect_abandoned"] == 1
        assert not mine.is_le_connecting  # bumble forgot it; the controller did not
        async with asyncio.timeout(5.0):
            connection = await scanner._connect(peer.random_address)
        await connection.disconnect()
        assert scanner.counters["connect_cancelled"] == 2  # the silent one, then the settling one


async def test_a_late_connection_of_an_abandoned_attempt_is_let_go(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The controller stays silent on the Cancel and connects later (the peer came back): that
    connection, which nobody waits for, is disconnected when it comes, and the next connect to
    the peer works."""
    first_cancel_unreported(monkeypatch)
    async with virtual_devices(2) as (mine, peer):
        scanner = BumbleHelloScanner(mine, read_timeout=30.0)
        await cancel_a_connect(scanner, mine, peer.random_address)
        assert scanner.counters["connect_abandoned"] == 1 and not mine.connections
        peer_connections: list[Any] = []
        peer.on("connection", peer_connections.append)
        await advertise_uuid_only(peer)  # the controller still holds the attempt: it connects now
        await wait_for(lambda: peer_connections, 5.0, "no late connection")
        await wait_for(
            lambda: not peer.connections and not mine.connections,
            5.0,
            "the late connection was left open",
        )
        assert scanner.counters["connect_late"] == 1
        async with asyncio.timeout(5.0):
            connection = await scanner._connect(peer.random_address)
        await connection.disconnect()
