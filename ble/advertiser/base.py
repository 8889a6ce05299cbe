"""The advertiser interface, and the one place a value written to our characteristic is judged.

bleak cannot advertise, so each OS path is its own backend. In 'peripheral' mode both backends
serve the 0xFD64 characteristic, readable (our payload) and writable: an iPhone that heard our
service data takes us for an Android phone and writes its 18-byte payload; an Android central
writes 19 (payload + the calibrated RSSI at which it heard us). ``accept_write`` decodes both
(``payload.decode_written_value``), refuses other sizes (the backend answers with its protocol's
error) and hands the HELLO on as a ``Sighting`` via 'write', which the collector records and
de-duplicates like any other.

The RSSI of an 18-byte write: the connection's, read from the controller when the backend can,
else the last advertisement RSSI heard from the writer's address (``rssi_of``, the collector's);
with neither, the write is counted (``write_no_rssi``) and not recorded, since a contact without
a signal strength cannot be scored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable

from ble.collector import WRITE, Sighting
from ble.payload import PayloadError, RobertPayload, decode_written_value

RSSI_UNKNOWN = 127
"""HCI's "RSSI not available", kept as the raw RSSI of a 19-byte write we could not measure."""


def _no_rssi(_address: str) -> int | None:
    return None


class HelloAdvertiser(ABC):
    """Broadcasts one StopCovid payload at a time; ``update`` swaps it for a fresh one."""

    name: str = "abstract"

    def __init__(self) -> None:
        self.current: RobertPayload | None = None
        """The payload on the air, or None when not advertising."""
        self.on_sighting: Callable[[Sighting], None] | None = None
        """Where HELLOs written to our characteristic go (the node sets the collector's feed)."""
        self.rssi_of: Callable[[str], int | None] = _no_rssi
        """Last advertisement RSSI of an address (the node sets the collector's)."""
        self.counters: Counter[str] = Counter()
        """gatt_reads, writes, write_refused, write_no_rssi."""

    @abstractmethod
    async def start(self, payload: RobertPayload) -> None:
        """Begin advertising ``payload``; raises the backend's errors (see ``ble.errors``)."""

    @abstractmethod
    async def update(self, payload: RobertPayload) -> None:
        """Replace the payload on the air (new HELLO time field or new epoch)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop advertising and release the OS object; safe to call when not started."""

    def read_value(self) -> bytes:
        """What a central reads from our characteristic: the payload on the air, or nothing."""
        self.counters["gatt_reads"] += 1
        return b"" if self.current is None else self.current.to_service_data()

    def check_write(self, data: bytes) -> None:
        """Raise PayloadError (counted) unless ``data`` is a write we accept; no other effect."""
        try:
            decode_written_value(data)
        except PayloadError:
            self.counters["write_refused"] += 1
            raise

    def accept_write(self, address: str, data: bytes, connection_rssi: int | None = None) -> bool:
        """Record a written value (True if it became a sighting); bad sizes raise PayloadError."""
        try:
            written = decode_written_value(data)
        except PayloadError:
            self.counters["write_refused"] += 1
            raise
        self.counters["writes"] += 1
        raw = connection_rssi if connection_rssi is not None else self.rssi_of(address)
        if raw is None and written.rssi_calibrated is None:
            self.counters["write_no_rssi"] += 1
            return False
        sighting = Sighting(
            address,
            RSSI_UNKNOWN if raw is None else raw,
            written.payload,
            via=WRITE,
            rssi_calibrated=written.rssi_calibrated,
        )
        if self.on_sighting is not None:
            self.on_sighting(sighting)
        return True
