"""One mapping from library and OS errors to one-line messages, and retry with backoff."""

from __future__ import annotations

import errno

import pytest
from bleak.exc import (
    BleakBluetoothNotAvailableError,
    BleakBluetoothNotAvailableReason,
    BleakDBusError,
    BleakError,
)
from bumble.hci import HCI_Error
from dbus_fast.errors import DBusError

from ble.cli import _run
from ble.errors import (
    AdapterMissing,
    AdapterPoweredOff,
    AdvertisingRefused,
    BackendUnavailable,
    PermissionDenied,
    RadioBusy,
    RadioError,
    describe,
    map_radio_error,
    retry,
)

CASES: list[tuple[BaseException, type[RadioError]]] = [
    (BleakDBusError("org.bluez.Error.NotPermitted", []), PermissionDenied),
    (BleakDBusError("org.bluez.Error.NotReady", ["Resource Not Ready"]), AdapterPoweredOff),
    (DBusError("org.freedesktop.DBus.Error.AccessDenied", "denied by policy"), PermissionDenied),
    (DBusError("org.freedesktop.DBus.Error.ServiceUnknown", "no org.bluez"), AdapterMissing),
    (DBusError("org.bluez.Error.Failed", "Maximum advertisements reached"), AdvertisingRefused),
    (
        BleakBluetoothNotAvailableError("off", BleakBluetoothNotAvailableReason.POWERED_OFF),
        AdapterPoweredOff,
    ),
    (
        BleakBluetoothNotAvailableError("no", BleakBluetoothNotAvailableReason.NO_BLUETOOTH),
        AdapterMissing,
    ),
    (
        BleakBluetoothNotAvailableError("x", BleakBluetoothNotAvailableReason.DENIED_BY_USER),
        PermissionDenied,
    ),
    (BleakError("adapter 'hci1' not found"), AdapterMissing),
    (PermissionError(errno.EPERM, "Operation not permitted"), PermissionDenied),
    (OSError(errno.ENODEV, "No such device"), AdapterMissing),
    (OSError(errno.EBUSY, "Device or resource busy"), RadioBusy),
    (OSError(errno.ENETDOWN, "Network is down"), AdapterPoweredOff),
    (HCI_Error(0x0C), AdvertisingRefused),
    (ModuleNotFoundError("no dbus_fast", name="dbus_fast"), BackendUnavailable),
]


@pytest.mark.parametrize(("exc", "kind"), CASES, ids=lambda v: type(v).__name__)
def test_mapping(exc: BaseException, kind: type[RadioError]) -> None:
    mapped = map_radio_error(exc)
    assert type(mapped) is kind
    line = describe(exc)
    assert "\n" not in line and line.startswith(mapped.summary)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "name",
    ["org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"],
)
def test_a_bus_without_bluez_says_to_start_bluetoothd(name: str) -> None:
    line = describe(DBusError(name, "The name org.bluez was not provided by any .service files"))
    assert "\n" not in line and line.startswith("no Bluetooth adapter found")
    assert "systemctl start bluetooth" in line and "bluetoothd is not running" in line
    assert "bluetoothctl list" not in line  # listing adapters needs bluetoothd too


def test_bugs_are_not_radio_errors() -> None:
    assert map_radio_error(ValueError("bug")) is None
    assert map_radio_error(KeyError("bug")) is None


async def test_retry_backs_off_then_succeeds() -> None:
    delays: list[float] = []
    lines: list[str] = []
    outcomes: list[BaseException | None] = [PermissionError(13, "denied")] * 4 + [None]

    async def sleep(delay: float) -> None:
        delays.append(delay)

    async def operation() -> str:
        outcome = outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return "up"

    result = await retry(
        operation, what="advertiser", report=lines.append, sleep=sleep, max_delay=5
    )
    assert result == "up"
    assert delays == [1, 2, 4, 5]
    assert all(line.startswith("advertiser: permission denied") for line in lines)


async def test_retry_does_not_retry_bugs() -> None:
    async def operation() -> None:
        raise ValueError("bug")

    with pytest.raises(ValueError):
        await retry(operation, what="x", report=print)


async def test_retry_gives_up_after_max_attempts() -> None:
    async def operation() -> None:
        raise OSError(errno.ENODEV, "No such device")

    async def sleep(_delay: float) -> None:
        return None

    with pytest.raises(AdapterMissing):
        await retry(operation, what="x", report=lambda _: None, sleep=sleep, max_attempts=3)


async def test_retry_stops_when_the_backend_cannot_work_here() -> None:
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        raise ModuleNotFoundError("no module", name="dbus_fast")

    with pytest.raises(BackendUnavailable):
        await retry(operation, what="x", report=lambda _: None)
    assert calls == 1


async def test_unopenable_bumble_transport_is_a_radio_error() -> None:
    from ble.bumble_radio import open_device

    with pytest.raises(AdapterMissing, match="ttyNOPE"):
        async with open_device("serial:/dev/ttyNOPE"):
            pass


def test_cli_prints_one_line_and_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    async def main() -> int:
        raise BleakDBusError("org.bluez.Error.NotPermitted", [])

    assert _run(main(), "ble scan") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("ble scan: permission denied")


async def test_retry_stops_when_its_task_is_cancelled() -> None:
    """A radio library may turn our cancellation into an error of its own: retry must not take
    that for a radio problem and go on (a node's stop() would then wait for ever)."""
    import asyncio

    from ble.errors import retry

    started = asyncio.Event()
    calls = 0

    async def operation() -> None:
        nonlocal calls
        calls += 1
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise OSError(errno.EIO, "I/O error") from None  # what a library may do

    task = asyncio.create_task(retry(operation, what="radio", report=lambda _: None))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert calls == 1


def test_backend_hints_name_the_cure_that_applies() -> None:
    missing = map_radio_error(ModuleNotFoundError("no bumble", name="bumble"))
    assert missing is not None and "pip install" in str(missing)
    no_sockets = map_radio_error(OSError(errno.EAFNOSUPPORT, "Address family not supported"))
    assert isinstance(no_sockets, BackendUnavailable)
    assert "HCI sockets" in str(no_sockets) and "install" not in str(no_sockets)
