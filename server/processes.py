"""Serving from several processes that share one listening port (SO_REUSEPORT), and the
event loop every long-running command runs on."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` on uvloop when available (the production loop), else asyncio's."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - Windows
        return asyncio.run(main)
    return uvloop.run(main)


def run_forked(count: int, serve: Callable[[bool], None]) -> None:
    """Run ``serve(reuse_port)`` in this process, or in ``count`` forked children that share
    the port, forwarding SIGTERM and SIGINT to them and waiting for them all."""
    if count == 1:
        serve(False)
        return
    children = []
    for _ in range(count):
        pid = os.fork()
        if pid == 0:  # child: its own event loop, sharing the port with its siblings
            serve(True)
            os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            os.kill(child, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for child in children:
        os.waitpid(child, 0)
