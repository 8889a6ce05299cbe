"""Each health service's own ``robert <service> serve``, as systemd, docker-compose and nginx
run it, answers at the paths its deployment forwards (``/<service>/...``): real processes on
loopback ports, each stopped at the end.

The applications are tested in process elsewhere; this proves the command serves the
application the deployment expects (the code service once served its routes without their
``/codes`` prefix, so that nginx, ``HttpCodeGate`` and every sign-in got 404)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.localcluster import free_port

ROBERT = Path(sys.executable).with_name("robert")

SERVICES = {
    # service: (the page a person opens, the machine path another service calls)
    "codes": ("/codes/login", "/codes/api/v1/authorities"),
    "sidep": ("/sidep/login", "/sidep/health"),
    "contact": ("/contact/login", "/contact/health"),
    "beds": ("/beds/login", "/beds/health"),
    "drugs": ("/drugs/login", "/drugs/health"),
    "sivic": ("/sivic/login", "/sivic/health"),
    "samu": ("/samu/login", "/samu/health"),
    "citizens": ("/citizens/directory/", "/citizens/health"),
}


async def wait_until_served(url: str, process: asyncio.subprocess.Process) -> None:
    """Poll ``url`` until it answers (any status), or fail if the process ended first."""
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            if process.returncode is not None:
                err = await process.stderr.read() if process.stderr else b""
                pytest.fail(f"the service exited {process.returncode}: {err.decode()[-2000:]}")
            try:
                async with session.get(url, allow_redirects=False):
                    return
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
    pytest.fail(f"nothing answered at {url} within 30 s")


@pytest.mark.parametrize("service", sorted(SERVICES))
async def test_the_service_alone_answers_under_its_prefix(service: str, tmp_path: Path) -> None:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        str(ROBERT),
        service,
        "serve",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path / "data"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    page, machine = SERVICES[service]
    try:
        await wait_until_served(base + machine, process)
        async with aiohttp.ClientSession() as session:
            for path in (page, machine):
                async with session.get(base + path, allow_redirects=False) as answer:
                    assert answer.status == 200, (path, answer.status, await answer.text())
            async with session.get(base + "/", allow_redirects=False) as root:
                assert root.status in (301, 302, 303, 307, 308), root.status
                assert root.headers["Location"].startswith(f"/{service}/")
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
