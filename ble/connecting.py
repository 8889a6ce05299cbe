"""Connecting with bumble without ever leaving a connection attempt pending in the controller.

A controller keeps an LE connection attempt pending until it connects or the host cancels it
(HCI LE Create Connection Cancel), and refuses every later LE Create Connection meanwhile
(Command Disallowed). bumble sends that Cancel on its own connect timeout, but not when the task
waiting for the connection is cancelled from outside (a bound around it, ``stop``): its clean-up
then forgets the attempt while the controller still has it, and every later connect fails. So
``connect_or_cancel`` runs bumble's connect shielded and, if cancelled, sends the Cancel itself
and lets bumble's connect see the outcome, as on its own timeout. The bumble scanner's reads and
the simulated iPhone's writes both connect through it.

Counters (in the ``counters`` the caller passes): ``connect_cancelled`` (Cancels we sent and
the controller answered), ``connect_raced_cancel`` (connections made just before such a Cancel,
disconnected at once), ``connect_abandoned`` (attempts whose outcome the controller did not
report within ``CANCEL_TIMEOUT``; see ``_cancel_attempt``), ``connect_late`` (connections such
an attempt made afterwards, disconnected when they came).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections import Counter

from bumble import core, hci
from bumble.device import Connection, Device

log = logging.getLogger(__name__)

CANCEL_TIMEOUT = 1.0
"""Seconds to wait for the controller's answer to an LE Create Connection Cancel, then as long
again for the attempt's outcome."""

_abandoned: weakref.WeakKeyDictionary[Device, _Abandoned] = weakref.WeakKeyDictionary()
"""Per device, the attempt last given up on while the controller may still hold it."""


async def connect_or_cancel(
    device: Device, peer: hci.Address | str, timeout: float, counters: Counter[str]
) -> Connection:
    """An LE connection to ``peer`` within ``timeout`` (bumble's own timeout, which cancels the
    attempt in the controller), raising ``TimeoutError`` past it.

    If the caller is cancelled, the attempt is cancelled in the controller before
    ``CancelledError`` goes on (this adds at most 2 x ``CANCEL_TIMEOUT``, milliseconds on a
    controller that answers), and a connection made just before that Cancel is disconnected.
    """
    abandoned = _abandoned.get(device)
    if abandoned is not None:
        await abandoned.settle()
    attempt = asyncio.ensure_future(device.connect(peer, timeout=timeout))
    try:
        return await asyncio.shield(attempt)
    except core.TimeoutError as exc:  # bumble cancelled the attempt itself
        raise TimeoutError(f"no connection within {timeout:g} s") from exc
    except asyncio.CancelledError:
        await _cancel_attempt(device, peer, attempt, counters)
        raise


async def _send_cancel(device: Device, counters: Counter[str]) -> bool:
    """HCI LE Create Connection Cancel; True if the controller had an attempt and dropped it
    (it then reports that attempt's outcome). Command Disallowed means nothing was pending."""
    try:
        response = await device.host.send_sync_command_raw(
            hci.HCI_LE_Create_Connection_Cancel_Command(), response_timeout=CANCEL_TIMEOUT
        )
    except Exception as exc:  # a controller that does not answer: nothing more to do
        log.warning("cancelling a connection attempt: %s: %s", type(exc).__name__, exc)
        return False
    counters["connect_cancelled"] += 1
    log.debug("connection attempt cancelled: %s", response.return_parameters)
    status = getattr(response.return_parameters, "status", response.return_parameters)
    return bool(status == hci.HCI_ErrorCode.SUCCESS)


async def _cancel_attempt(
    device: Device,
    peer: hci.Address | str,
    attempt: asyncio.Future[Connection],
    counters: Counter[str],
) -> None:
    """Cancel the attempt in the controller, then take its outcome: the failure the controller
    reports, or a connection made just before the Cancel (disconnected).

    If the controller reports nothing within ``CANCEL_TIMEOUT`` (it did not answer the Cancel,
    or answered it and then stayed silent: a broken controller or a lost HCI event), no host
    can tell whether it still holds the attempt, and waiting longer would hold the caller's
    cancellation hostage to that controller. So bumble's connect is cut short after all and the
    attempt is counted (``connect_abandoned``) and remembered: a connection it makes later is
    disconnected when it comes (``connect_late``), and the next ``connect_or_cancel`` on that
    device first sends another Cancel and waits for its outcome, so that connect is not refused
    for an attempt nobody waits for. Nothing better exists short of resetting the controller
    (which would end advertising and every connection): a controller that accepts that Cancel
    too and again reports nothing (bumble's stock virtual controller always does) still refuses
    the next connect, and each connect after it sends one more Cancel first.
    """
    if not attempt.done():
        await _send_cancel(device, counters)
        await asyncio.wait({attempt}, timeout=CANCEL_TIMEOUT)
    if not attempt.done():  # the controller reported nothing: stop waiting for it
        abandoned = _Abandoned(device, peer, counters)
        attempt.cancel()
        await asyncio.wait({attempt})
        if attempt.cancelled():
            counters["connect_abandoned"] += 1
            log.warning(
                "connection attempt to %s: no outcome %g s after its Cancel; given up on",
                peer,
                CANCEL_TIMEOUT,
            )
            _abandoned[device] = abandoned
            abandoned.arm()
            return
        abandoned.close()  # the outcome came after all: handled below
    if attempt.cancelled() or attempt.exception() is not None:
        return  # the failure the Cancel caused (or any other): nothing to clean up
    counters["connect_raced_cancel"] += 1
    with contextlib.suppress(Exception):  # connected just before the Cancel: let it go
        await attempt.result().disconnect()


class _Abandoned:
    """An attempt bumble forgot while the controller may still hold it: watches for its outcome
    (a late connection is disconnected), and is settled by a Cancel before the next connect."""

    def __init__(self, device: Device, peer: hci.Address | str, counters: Counter[str]) -> None:
        self._device = device
        self._peer = str(peer).split("/")[0].upper()
        self._counters = counters
        self._outcome: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._armed = False
        self._set_own_address_type = False
        self._early: list[Connection] = []
        self._disconnects: set[asyncio.Task[None]] = set()
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        device.on(Device.EVENT_CONNECTION_FAILURE, self._on_failure)

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.CENTRAL or (
            connection.peer_address.to_string(False).upper() != self._peer
        ):
            return  # a peer connecting to us, or not the attempt's peer
        self._ended()
        if self._armed:
            self._disconnect(connection)
        else:  # came while bumble's connect was being cut short: arm() decides
            self._early.append(connection)

    def _on_failure(self, error: core.ConnectionError) -> None:
        if error.transport == core.PhysicalTransport.LE:
            self._ended()

    def _ended(self) -> None:
        if not self._outcome.done():
            self._outcome.set_result(None)

    def _disconnect(self, connection: Connection) -> None:
        self._counters["connect_late"] += 1
        log.info("late connection to %s from an abandoned attempt: disconnecting", self._peer)
        task = asyncio.get_running_loop().create_task(_let_go(connection))
        self._disconnects.add(task)
        task.add_done_callback(self._disconnects.discard)

    def arm(self) -> None:
        """bumble has forgotten the attempt: its connections are ours to let go. bumble's device
        takes a central connection only while a connect has set the own address type it used
        (it asserts otherwise, in the host's event handling): set back what ours used, so that
        a late connection becomes a ``Connection`` we can disconnect."""
        self._armed = True
        if self._device.connect_own_address_type is None:
            self._device.connect_own_address_type = hci.OwnAddressType.RANDOM  # connect's default
            self._set_own_address_type = True
        for connection in self._early:
            self._disconnect(connection)
        self._early.clear()

    def close(self) -> None:
        """Stop watching the device."""
        self._device.remove_listener(Device.EVENT_CONNECTION, self._on_connection)
        self._device.remove_listener(Device.EVENT_CONNECTION_FAILURE, self._on_failure)
        if self._set_own_address_type and not self._device.is_le_connecting:
            self._device.connect_own_address_type = None
        self._set_own_address_type = False

    async def settle(self) -> None:
        """Before the next connect: cancel the attempt if the controller still holds it, wait
        for its outcome, and stop watching. Forgotten unless the controller accepted this Cancel
        too and again reported nothing: then the connect after the next one tries once more."""
        pending = not self._outcome.done() and await _send_cancel(self._device, self._counters)
        if pending:
            await asyncio.wait({self._outcome}, timeout=CANCEL_TIMEOUT)
        if self._disconnects:
            await asyncio.wait(set(self._disconnects))
        self.close()  # the next connect's own connection is not ours to let go
        if pending and not self._outcome.done():
            log.warning("a connection attempt given up on is still unreported after a Cancel")
            return
        if _abandoned.get(self._device) is self:
            del _abandoned[self._device]


async def _let_go(connection: Connection) -> None:
    with contextlib.suppress(Exception):
        await connection.disconnect()
