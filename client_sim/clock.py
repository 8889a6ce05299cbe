"""A virtual clock shared by a simulated world and the server it talks to."""

from __future__ import annotations

from datetime import datetime


class VirtualClock:
    """Unix seconds that move only when told: call it like ``time.time``."""

    def __init__(self, start: float | datetime) -> None:
        self.now = start.timestamp() if isinstance(start, datetime) else float(start)

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward (never backwards: protocol times only grow)."""
        if seconds < 0:
            raise ValueError("a virtual clock does not go back")
        self.now += seconds

    def move_to(self, unix: float) -> None:
        """Move time to ``unix`` if that is later (protocol times only grow)."""
        self.now = max(self.now, unix)
