"""Radio errors and their mapping to one-line messages, in one place.

Every backend raises whatever its library raises (bleak, dbus-fast, bumble, the OS);
``map_radio_error`` turns the ones that mean "the radio is not usable right now" into a small
hierarchy with a message a person can act on. ``retry`` keeps trying those with backoff, so the
CLI prints one line per failure instead of a traceback. Anything unmapped is a bug and propagates.
"""

from __future__ import annotations

import asyncio
import errno
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class RadioError(Exception):
    """The radio cannot be used right now; ``str()`` is one line saying what to do."""

    hint = ""

    def __init__(self, detail: str = "", hint: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if hint is not None:
            self.hint = hint

    def __str__(self) -> str:
        parts = [self.summary]
        if self.detail:
            parts.append(f"({self.detail})")
        if self.hint:
            parts.append(f"- {self.hint}")
        return " ".join(parts)

    @property
    def summary(self) -> str:
        """What went wrong, without the detail."""
        return "Bluetooth radio unavailable"


class AdapterMissing(RadioError):
    """No Bluetooth adapter, or not the one asked for."""

    hint = "check `bluetoothctl list` / `hciconfig`, or the --adapter / --transport given"

    @property
    def summary(self) -> str:
        return "no Bluetooth adapter found"


class AdapterPoweredOff(RadioError):
    """The adapter exists but is off or blocked."""

    hint = "run `bluetoothctl power on` (and `rfkill unblock bluetooth`)"

    @property
    def summary(self) -> str:
        return "Bluetooth adapter is powered off"


class PermissionDenied(RadioError):
    """The OS refused access to the adapter or to BlueZ."""

    hint = (
        "run as root, join the `bluetooth` group (BlueZ D-Bus policy), or for bumble "
        "hci-socket `sudo setcap 'cap_net_raw,cap_net_admin+eip'` on the python binary"
    )

    @property
    def summary(self) -> str:
        return "permission denied by the system"


class AdvertisingRefused(RadioError):
    """The OS or controller would not start our advertisement."""

    hint = "another program may hold all advertising slots; BlueZ >= 5.50 is needed"

    @property
    def summary(self) -> str:
        return "advertising refused"


class RadioBusy(RadioError):
    """The adapter is held by someone else (e.g. bluetoothd while bumble wants hci-socket)."""

    hint = "stop the other user (for bumble hci-socket: `sudo systemctl stop bluetooth`)"

    @property
    def summary(self) -> str:
        return "Bluetooth adapter busy"


NO_HCI_SOCKETS = (
    "this Python has no Bluetooth HCI sockets (a container, macOS or Windows, or a Python built "
    "without libbluetooth-dev): give bumble --transport usb:0 or serial:/dev/ttyUSB0, "
    "or use --scanner bleak"
)
"""The hint when bumble's hci-socket transport cannot exist here: no package is missing."""
MISSING_PACKAGE = "install the `ble` extras (pip install -e '.[ble]') or choose another backend"


class BackendUnavailable(RadioError):
    """The chosen backend cannot work here (missing package, unsupported OS).

    The hint is given by whoever knows the cause (``MISSING_PACKAGE``, ``NO_HCI_SOCKETS``); the
    default names no cure it cannot vouch for.
    """

    hint = "choose another backend (--scanner, --advertiser, --transport)"

    @property
    def summary(self) -> str:
        return "backend unavailable"


START_BLUETOOTHD = (
    "bluetoothd is not running on the D-Bus system bus (no org.bluez there): start it "
    "(sudo systemctl start bluetooth), or use bumble with a --transport"
)
"""The hint when the bus answers but nobody owns org.bluez: no adapter list can help then."""

_DBUS_HINTS: dict[str, str] = {
    "org.freedesktop.DBus.Error.ServiceUnknown": START_BLUETOOTHD,
    "org.freedesktop.DBus.Error.NameHasNoOwner": START_BLUETOOTHD,
}
"""Hints for D-Bus errors whose cure is not their class's (the bus has no org.bluez)."""

_DBUS_ERRORS: dict[str, type[RadioError]] = {
    "org.bluez.Error.NotPermitted": PermissionDenied,
    "org.bluez.Error.NotAuthorized": PermissionDenied,
    "org.freedesktop.DBus.Error.AccessDenied": PermissionDenied,
    "org.freedesktop.DBus.Error.AuthFailed": PermissionDenied,
    "org.bluez.Error.NotReady": AdapterPoweredOff,
    "org.bluez.Error.NotAvailable": AdapterPoweredOff,
    "org.freedesktop.DBus.Error.UnknownObject": AdapterMissing,
    "org.freedesktop.DBus.Error.ServiceUnknown": AdapterMissing,  # bluetoothd not running
    "org.freedesktop.DBus.Error.NameHasNoOwner": AdapterMissing,
    "org.bluez.Error.InProgress": RadioBusy,
    "org.bluez.Error.Busy": RadioBusy,
    "org.bluez.Error.AlreadyExists": AdvertisingRefused,
    "org.bluez.Error.InvalidLength": AdvertisingRefused,
    "org.bluez.Error.InvalidArguments": AdvertisingRefused,
    "org.bluez.Error.NotSupported": AdvertisingRefused,
    "org.bluez.Error.Failed": AdvertisingRefused,  # "Maximum advertisements reached" and kin
}

_ERRNO_ERRORS: dict[int, type[RadioError]] = {
    errno.EPERM: PermissionDenied,
    errno.EACCES: PermissionDenied,
    errno.ENODEV: AdapterMissing,
    errno.ENOENT: AdapterMissing,
    errno.ENXIO: AdapterMissing,
    errno.EBUSY: RadioBusy,
    errno.ENETDOWN: AdapterPoweredOff,  # hci socket on an adapter that is down
    errno.ERFKILL: AdapterPoweredOff,
}


def _dbus_error_name(exc: BaseException) -> str | None:
    """The D-Bus error name of a bleak BleakDBusError or a dbus-fast DBusError, else None."""
    name = getattr(exc, "dbus_error", None)  # bleak.exc.BleakDBusError
    if isinstance(name, str):
        return name
    if type(exc).__name__ == "DBusError":  # dbus_fast.errors.DBusError, without importing it
        name = getattr(exc, "type", None)
        if isinstance(name, str):
            return name
    return None


def _from_bleak(exc: BaseException) -> RadioError | None:
    """Map bleak's own exceptions (which exist on every OS)."""
    try:
        from bleak.exc import (
            BleakBluetoothNotAvailableError,
            BleakBluetoothNotAvailableReason,
            BleakError,
        )
    except ImportError:  # bleak not installed: nothing of it to map
        return None
    if isinstance(exc, BleakBluetoothNotAvailableError):
        reason = exc.reason
        if reason in (
            BleakBluetoothNotAvailableReason.NO_BLUETOOTH,
            BleakBluetoothNotAvailableReason.NO_BLE_CENTRAL_ROLE,
        ):
            return AdapterMissing(str(exc))
        if reason is BleakBluetoothNotAvailableReason.POWERED_OFF:
            return AdapterPoweredOff(str(exc))
        if reason in (
            BleakBluetoothNotAvailableReason.DENIED_BY_USER,
            BleakBluetoothNotAvailableReason.DENIED_BY_SYSTEM,
            BleakBluetoothNotAvailableReason.DENIED_BY_UNKNOWN,
        ):
            return PermissionDenied(str(exc))
        return RadioError(str(exc))
    if isinstance(exc, BleakError):
        text = str(exc).lower()
        if "not found" in text or "no bluetooth adapter" in text:
            return AdapterMissing(str(exc))
        if "not powered" in text or "powered off" in text:
            return AdapterPoweredOff(str(exc))
        return RadioError(str(exc))
    return None


def _from_bumble(exc: BaseException) -> RadioError | None:
    """Map bumble's HCI failures: the controller said no to a command."""
    try:
        from bumble.hci import HCI_Error
    except ImportError:
        return None
    if isinstance(exc, HCI_Error):
        return AdvertisingRefused(str(exc))
    if type(exc).__name__ in ("CommandTimeoutError", "TransportLostError"):
        return AdapterMissing(str(exc))
    return None


def map_radio_error(exc: BaseException) -> RadioError | None:
    """The RadioError an exception means, or None if it is not a radio condition (a bug)."""
    if isinstance(exc, RadioError):
        return exc
    name = _dbus_error_name(exc)
    if name is not None:
        kind = _DBUS_ERRORS.get(name, RadioError)
        text = str(exc) if name in str(exc) else f"{name}: {exc}"
        return kind(text, _DBUS_HINTS.get(name))
    mapped = _from_bleak(exc)
    if mapped is not None:
        return mapped
    mapped = _from_bumble(exc)
    if mapped is not None:
        return mapped
    if isinstance(exc, ModuleNotFoundError):
        return BackendUnavailable(f"missing Python package {exc.name!r}", MISSING_PACKAGE)
    if isinstance(exc, PermissionError):
        return PermissionDenied(str(exc))
    if isinstance(exc, OSError) and exc.errno == errno.EAFNOSUPPORT:
        return BackendUnavailable(str(exc), NO_HCI_SOCKETS)  # no AF_BLUETOOTH here
    if isinstance(exc, OSError) and exc.errno in _ERRNO_ERRORS:
        return _ERRNO_ERRORS[exc.errno](str(exc))
    if isinstance(exc, FileNotFoundError):
        return AdapterMissing(str(exc))
    return None


def describe(exc: BaseException) -> str:
    """One line for a person: the mapped message, or the exception's type and text."""
    mapped = map_radio_error(exc)
    if mapped is not None:
        return str(mapped)
    return f"{type(exc).__name__}: {exc}"


def raise_if_cancelling() -> None:
    """Raise CancelledError if the current task was asked to stop.

    Radio libraries sometimes turn a cancellation into an error of their own, or swallow it
    while an HCI command completes; a loop that then carried on would never stop.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def retry(
    operation: Callable[[], Awaitable[T]],
    *,
    what: str,
    report: Callable[[str], None],
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
    max_attempts: int | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run ``operation`` until it succeeds, retrying radio errors with exponential backoff.

    Each failure is reported as one line; a non-radio exception propagates at once (a bug must
    not be retried forever), so does BackendUnavailable. After ``max_attempts`` the last
    RadioError is raised.
    """
    delay = initial_delay
    attempt = 0
    while True:
        attempt += 1
        try:
            return await operation()
        except Exception as exc:  # mapped below; anything unmapped is re-raised unchanged
            raise_if_cancelling()  # a radio error caused by our own cancellation: stop now
            mapped = map_radio_error(exc)
            if mapped is None:
                raise
            if isinstance(mapped, BackendUnavailable):
                raise mapped from exc  # waiting will not install a package or change the OS
            if max_attempts is not None and attempt >= max_attempts:
                raise mapped from exc
            report(f"{what}: {mapped}; retrying in {delay:.0f} s")
        await sleep(delay)
        delay = min(delay * 2, max_delay)
