"""A small progress bar on stderr, for long runs (off when stderr is not a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    """Stage name, a bar, and the elapsed time, redrawn at most ten times a second."""

    def __init__(self, enabled: bool = True, width: int = 30) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.width = width
        self.began = time.perf_counter()
        self.name = ""
        self.total = 1
        self.done = 0
        self._drawn = 0.0

    def stage(self, name: str, total: int) -> None:
        """Start a new stage of ``total`` steps."""
        self.name, self.total, self.done = name, max(1, total), 0
        self._draw(force=True)

    def advance(self, steps: int) -> None:
        """Count ``steps`` more steps done."""
        self.done += steps
        self._draw(force=self.done >= self.total)

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        if not self.enabled or (not force and now - self._drawn < 0.1):
            return
        self._drawn = now
        filled = self.width * min(self.done, self.total) // self.total
        bar = "#" * filled + "." * (self.width - filled)
        sys.stderr.write(f"\r{self.name:<14} [{bar}] {now - self.began:7.1f} s")
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
