"""The advertiser interface: bleak cannot advertise, so each OS path is its own backend."""

from __future__ import annotations

from abc import ABC, abstractmethod

from ble.payload import RobertPayload


class HelloAdvertiser(ABC):
    """Broadcasts one StopCovid payload at a time; ``update`` swaps it for a fresh one."""

    name: str = "abstract"

    def __init__(self) -> None:
        self.current: RobertPayload | None = None
        """The payload on the air, or None when not advertising."""

    @abstractmethod
    async def start(self, payload: RobertPayload) -> None:
        """Begin advertising ``payload``; raises the backend's errors (see ``ble.errors``)."""

    @abstractmethod
    async def update(self, payload: RobertPayload) -> None:
        """Replace the payload on the air (new HELLO time field or new epoch)."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop advertising and release the OS object; safe to call when not started."""
