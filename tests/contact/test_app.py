"""The application as it runs: SI-DEP's feed consumed in the background, the auto-open job,
the dispatcher delivering the contacts' messages (files), all over real HTTP."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from argon2 import PasswordHasher

from contact.access import Access
from contact.app import API_KEY_PREFIX, create_app, mount, new_service
from contact.service import TOPICS, CaseInput, ContactInput
from contact.settings import Settings as ContactSettings
from kit.auth.people import Accounts
from kit.db import Database
from kit.events import append, local_fetcher
from kit.notify import Channel, FileTransport, SmtpTransport
from kit.settings import SettingsError
from tests.contact.conftest import FAST_HASHER, SECRET, Clock, person, settings_for
from tests.contact.test_events import positive


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 20.0) -> None:
    """Wait for a background job's effect (polling; generous: the machine may be slow)."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the job did not run in time"
        await asyncio.sleep(0.05)


async def test_positive_to_notified_contacts_in_the_running_app(
    tmp_path: Path, clock: Clock
) -> None:
    sidep = Database(f"sqlite:///{tmp_path / 'sidep.db'}")
    await sidep.migrate()
    settings = settings_for(f"sqlite:///{tmp_path / 'contact.db'}", tmp_path, job_seconds=0.1)
    service = new_service(settings, clock)
    await service.open()
    accounts = Accounts(
        service.store.db, SECRET, "Contact Covid", api_key_prefix=API_KEY_PREFIX, clock=clock,
        hasher=PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1),
    )  # fmt: skip
    root = web.Application()
    app = create_app(settings, service, accounts, clock, feed=local_fetcher(sidep, TOPICS))
    mount(root, app)
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    _, cpam = await accounts.api_keys.create("cpam", "cpam_agent", "dep:75")
    api = str(server.make_url("/contact/api/v1"))
    headers = {"Authorization": f"Bearer {cpam}"}
    try:
        async with sidep.begin() as conn:
            now = datetime.fromtimestamp(clock(), UTC)
            await append(conn, "sidep.positive", positive("R9"), key="R9", now=now)
        async with aiohttp.ClientSession(headers=headers) as s:

            async def queue() -> list[dict[str, object]]:
                async with s.get(f"{api}/cases") as r:
                    return list((await r.json())["cases"])

            async def pending() -> bool:
                async with service.store.db.connect() as conn:
                    return len(await service.store.pending_list(conn)) == 1

            await eventually(pending)  # the consumer took the event
            assert await queue() == []  # within the delay
            clock.advance(24 * 3600 + 1)

            async def opened() -> bool:
                return len(await queue()) == 1

            await eventually(opened)  # the auto-open job
            (case,) = await queue()
            body = {"last_name": "Martin", "first_name": "Paul", "phone": "06 12 34 56 78",
                    "postcode": "75011", "last_contact": "2020-10-21"}  # fmt: skip
            async with s.post(f"{api}/cases/{case['id']}/contacts", json=body) as r:
                assert r.status == 201, await r.text()
            async with s.post(f"{api}/cases/{case['id']}/notify") as r:
                assert (await r.json()) == {"notified": 1}
            outbox = tmp_path / "data" / "outbox"

            async def delivered() -> bool:
                return outbox.is_dir() and any(outbox.glob("*-sms.txt"))

            await eventually(delivered)  # the dispatcher
            (sms,) = outbox.glob("*-sms.txt")
            text = sms.read_text()
            assert "To: +33612345678" in text and "Moreau" not in text
    finally:
        await server.close()
        await service.close()
        await sidep.close()


async def test_contacts_messages_go_through_the_configured_gateways(
    tmp_path: Path, clock: Clock
) -> None:
    """CONTACT_SMS_URL and CONTACT_SMS_TOKEN: the dispatcher job posts the SMS to the gateway
    (here a fake one over real HTTP); CONTACT_SMTP_URL: e-mails through SMTP."""
    received: list[tuple[str, dict[str, str]]] = []

    async def gateway(request: web.Request) -> web.Response:
        received.append((request.headers.get("Authorization", ""), await request.json()))
        return web.json_response({"ok": True})

    fake = web.Application()
    fake.router.add_post("/send", gateway)
    sms_server = TestServer(fake, host="127.0.0.1")
    await sms_server.start_server()
    settings = settings_for(
        f"sqlite:///{tmp_path / 'contact.db'}", tmp_path, job_seconds=0.1,
        sms_url=str(sms_server.make_url("/send")), sms_token="t0ken",
        smtp_url="smtp://relay:s3cret@mail.example.fr", mail_from="contact@ameli.example",
    )  # fmt: skip
    settings.validate()
    chosen = settings.transports()
    assert isinstance(chosen[Channel.EMAIL], SmtpTransport)
    assert chosen[Channel.EMAIL].sender == "contact@ameli.example"  # type: ignore[attr-defined]
    assert isinstance(chosen[Channel.LETTER], FileTransport)
    assert "s3cret" not in settings.describe() and "t0ken" not in settings.describe()
    service = new_service(settings, clock)
    await service.open()
    accounts = Accounts(service.store.db, SECRET, "Contact Covid", api_key_prefix=API_KEY_PREFIX,
                        clock=clock, hasher=FAST_HASHER)  # fmt: skip
    root = web.Application()
    mount(root, create_app(settings, service, accounts, clock))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        cpam = Access("agent", "cpam_agent", "dep:75")
        index = CaseInput(
            person("Dupont", "Élodie"), date(2020, 10, 22), onset_date=date(2020, 10, 20)
        )
        case = await service.open_case(cpam, index)
        listed = ContactInput(person("Martin", "Paul", phone="0612345678"), date(2020, 10, 21))
        await service.add_contact(cpam, case.id, listed)
        assert await service.notify_contacts(cpam, case.id) == 1

        async def delivered() -> bool:
            return bool(received)

        await eventually(delivered)
        ((authorization, body),) = received
        assert authorization == "Bearer t0ken" and body["to"] == "+33612345678"
        assert "Restez isolé" in body["text"]
        assert not (tmp_path / "data" / "outbox").exists() or not any(
            (tmp_path / "data" / "outbox").glob("*-sms.txt")
        )
    finally:
        await server.close()
        await service.close()
        await sms_server.close()


def test_bad_gateway_settings_are_refused_in_one_line(tmp_path: Path) -> None:
    for extra, part in (({"sms_url": "ftp://sms.example.fr", "sms_token": "t"}, "http"),
                        ({"sms_url": "https://sms.example.fr"}, "token"),
                        ({"smtp_url": "http://u:s3cret@mail"}, "smtp://"),
                        ({"mail_from": "nobody"}, "mail_from")):  # fmt: skip
        settings = settings_for("sqlite://", tmp_path, **extra)
        with pytest.raises(SettingsError) as refused:
            settings.validate()
        assert part in str(refused.value) and "s3cret" not in str(refused.value)
        assert "\n" not in str(refused.value)


def test_the_compose_file_s_defaults_are_valid_settings(tmp_path: Path) -> None:
    """An empty ``${CONTACT_MAIL_FROM:-}`` in compose is an empty sender, which the settings
    refuse (the container would not start): compose gives the settings' default."""
    compose = Path(__file__).resolve().parents[2] / "deploy" / "docker-compose.yml"
    environment = yaml.safe_load(compose.read_text())["services"]["contact"]["environment"]
    environ = {
        key: re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", str(value))
        for key, value in environment.items()
        if key.startswith("CONTACT_")
    }
    environ["CONTACT_DATA_DIR"] = str(tmp_path)
    assert ContactSettings.from_sources(environ=environ).mail_from == "contact-covid@localhost"
