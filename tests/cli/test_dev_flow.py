"""``robert dev`` wires SI-DEP to Contact Covid: a positive result a lab sends to SI-DEP over
HTTP becomes, through SI-DEP's outbox and Contact Covid's feed consumer, a positive waiting in
Contact Covid to open a level-2 case (issues 17 and 18, end to end in one process)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from cli.dev import build_app
from contact.app import new_service as contact_service
from contact.settings import Settings as ContactSettings
from server.settings import Settings
from sidep.app import open_accounts
from sidep.formats.csvfile import HEADER
from sidep.settings import Settings as SidepSettings

LAB = "750712184"


def positive_line(sampled: datetime) -> str:
    day = sampled.strftime("%Y-%m-%dT%H:%M")
    return f"{LAB};S-DEV-1;295109912611193;Dupont;Céline;1995-10-01;F;75011;{day};{day};94500-6;P"


@pytest.fixture(autouse=True)
def no_outside_services(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SIDEP_DATA_DIR", "CONTACT_DATA_DIR", "CONTACT_SIDEP_URL", "SIDEP_CODES_URL"):
        monkeypatch.delenv(name, raising=False)


async def test_a_positive_sent_to_sidep_waits_in_contact_covid(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False)
    server = TestServer(build_app(settings), host="127.0.0.1")
    await server.start_server()
    accounts = open_accounts(SidepSettings.beside(str(tmp_path)))
    contact = contact_service(ContactSettings.beside(str(tmp_path)))
    try:
        _, key = await accounts.api_keys.create("dev lab", "lab", f"finess:{LAB}")
        sampled = datetime.now(UTC) - timedelta(days=1)
        body = f"{HEADER}\n{positive_line(sampled)}\n".encode()
        url = server.make_url("/sidep/api/v1/files").with_query(format="csv", name="day.csv")
        async with aiohttp.ClientSession() as client:
            headers = {"Authorization": f"Bearer {key}"}
            async with client.post(url, data=body, headers=headers) as r:
                assert r.status == 200, await r.text()
                assert (await r.json())["accepted"] == 1

        await contact.open()
        deadline = asyncio.get_running_loop().time() + 30
        while True:
            async with contact.store.db.connect() as conn:
                pending = await contact.store.pending_list(conn)
            if pending:
                break
            assert asyncio.get_running_loop().time() < deadline, "Contact Covid never heard it"
            await asyncio.sleep(0.1)
        assert len(pending) == 1
    finally:
        await contact.close()
        await accounts.db.close()
        await server.close()


async def test_the_board_reads_sivic_counts_in_one_process(tmp_path: Path) -> None:
    """The SAMU board's counts come from SI-VIC's service in ``robert dev`` (no URL, no key)."""
    from cli import wiring

    settings = Settings(data_dir=str(tmp_path), captcha="off", embedded_worker=False)
    _, sivic = wiring.in_process_sivic(settings)
    await sivic.open()
    try:
        counts = await wiring.SivicCounts(sivic).counts("75")
        assert counts is not None and counts["dep"] == "75" and counts["hosp"] == 0
    finally:
        await sivic.close()
