"""``robert serve``: the ROBERT server alone on its embedded SQLite store, as a real process.
It says where it listens, its root is the HTML index of what it serves, and SIGTERM stops it
cleanly (systemd and docker stop it so)."""

from __future__ import annotations

import asyncio
import signal
import sys
from html.parser import HTMLParser
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.localcluster import free_port

ROBERT = Path(sys.executable).with_name("robert")


class Links(HTMLParser):
    """The ``href`` of every ``<a>`` of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self.hrefs += [value for name, value in attrs if name == "href" and value]


async def read_until(stream: asyncio.StreamReader, words: str, seen: list[str]) -> None:
    """Read log lines into ``seen`` until one holds ``words`` (fail at the end of the log)."""
    while True:
        line = (await stream.readline()).decode()
        if not line:
            pytest.fail(f"the log ended before {words!r}:\n{''.join(seen)[-3000:]}")
        seen.append(line)
        if words in line:
            return


async def test_serve_logs_its_address_serves_its_index_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(ROBERT),
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    base = f"http://127.0.0.1:{port}"
    try:
        await asyncio.wait_for(read_until(process.stderr, "listening on", log), 120)
        assert f"listening on {base}/" in log[-1], log[-1]
        async with aiohttp.ClientSession() as session:
            async with session.get(base + "/") as index:
                assert index.status == 200
                assert index.content_type == "text/html"
                links = Links()
                links.feed(await index.text())
            for path in ("/openapi.json", "/health", "/metrics"):
                assert path in links.hrefs, links.hrefs
                async with session.get(base + path) as linked:
                    assert linked.status == 200, (path, linked.status)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(read_until(process.stderr, "stopped", log), 60)
        assert await asyncio.wait_for(process.wait(), 60) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "Traceback" not in "".join(log)
