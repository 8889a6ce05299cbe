"""kit.notify: queued with the business change, delivered at least once, retried with a bounded
backoff; files, a real SMTP server with STARTTLS and AUTH on loopback, an HTTP SMS gateway."""

from __future__ import annotations

import asyncio
import socket
import ssl
import stat
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from kit.db import Database
from kit.notify import (
    Attachment,
    Channel,
    Dispatcher,
    FileTransport,
    HttpSmsTransport,
    Notification,
    PermanentFailure,
    SmtpTransport,
    Status,
    close_transports,
    enqueue,
    smtp_from_url,
    transports,
)
from kit.schema import notification_attachments
from tests.tls import self_signed

T0 = datetime(2026, 12, 10, 4, 8, tzinfo=UTC)
PDF = Attachment("resultat.pdf", "application/pdf", b"%PDF-1.7 fake result sheet")
BODY = "Bonjour Élodie Dupont-Lefèvre,\nvotre résultat est disponible."


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class Recorder:
    """A transport that fails as told, then records."""

    def __init__(self, failures: list[Exception] | None = None) -> None:
        self.failures = failures or []
        self.sent: list[Notification] = []

    async def send(self, notification: Notification) -> None:
        if self.failures:
            raise self.failures.pop(0)
        await asyncio.sleep(0.001)
        self.sent.append(notification)


async def queue_email(db: Database, attachments: tuple[Attachment, ...] = (PDF,)) -> int:
    async with db.begin() as conn:
        return await enqueue(
            conn, "email", "elodie.dupont@example.fr", "Votre résultat", BODY, attachments,
            now=T0,
        )  # fmt: skip


# --- the outbox -----------------------------------------------------------------------------------
async def test_a_notification_commits_with_its_change(db: Database) -> None:
    with pytest.raises(RuntimeError):
        async with db.begin() as conn:
            await enqueue(conn, "sms", "+33612345678", "", "Résultat disponible", now=T0)
            raise RuntimeError("the result was not recorded")
    dispatcher = Dispatcher(db, {Channel.SMS: Recorder()}, clock=Clock())
    assert await dispatcher.dispatch_once() == 0
    notification_id = await queue_email(db)
    assert await dispatcher.status(notification_id) == (Status.PENDING, 0, None)


@pytest.mark.parametrize(
    ("channel", "recipient", "subject", "attachments", "message"),
    [
        ("email", "not an address", "s", (), "e-mail recipient"),
        ("sms", "06 12", "", (), "international form"),
        ("fax", "x", "", (), "is not a valid Channel"),
        ("email", "a@b.fr", "two\nlines", (), "one line"),
        ("sms", "+33612345678", "", (PDF,), "only e-mails"),
        ("letter", "", "", (), "1 to 500"),
    ],
)
async def test_malformed_notifications_are_refused(
    sqlite_db: Database, channel: str, recipient: str, subject: str, attachments: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        async with sqlite_db.begin() as conn:
            await enqueue(conn, channel, recipient, subject, "body", attachments)


# --- dispatching ----------------------------------------------------------------------------------
async def test_temporary_failures_are_retried_with_backoff(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    transport = Recorder([OSError("connection refused by smtp.example.fr"), TimeoutError()])
    dispatcher = Dispatcher(db, {Channel.EMAIL: transport}, clock=clock)
    notification_id = await queue_email(db)
    assert await dispatcher.dispatch_once() == 1
    status, attempts, error = await dispatcher.status(notification_id)
    assert (status, attempts) == (Status.PENDING, 1)
    assert error is not None and error.startswith("OSError at ") and "smtp" not in error
    clock.now += timedelta(seconds=59)
    assert await dispatcher.dispatch_once() == 0  # one minute after the first failure
    clock.now += timedelta(seconds=1)
    assert await dispatcher.dispatch_once() == 1
    clock.now += timedelta(minutes=1)
    assert await dispatcher.dispatch_once() == 0  # two minutes after the second
    clock.now += timedelta(minutes=1)
    assert await dispatcher.dispatch_once() == 1
    assert await dispatcher.status(notification_id) == (Status.SENT, 3, None)
    [sent] = transport.sent
    assert (sent.recipient, sent.body, sent.attachments) == (
        "elodie.dupont@example.fr",
        BODY,
        (PDF,),
    )
    assert "elodie" not in caplog.text and "Élodie" not in caplog.text


async def test_attempts_are_bounded(db: Database, caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    transport = Recorder([OSError()] * 3)
    dispatcher = Dispatcher(db, {Channel.EMAIL: transport}, clock=clock, max_attempts=3)
    notification_id = await queue_email(db)
    for _ in range(5):
        await dispatcher.dispatch_once()
        clock.now += dispatcher.backoff_max
    status, attempts, _ = await dispatcher.status(notification_id)
    assert (status, attempts, transport.sent) == (Status.FAILED, 3, [])
    assert dispatcher.backoff(1) == timedelta(minutes=1)
    assert dispatcher.backoff(30) == timedelta(hours=6)
    assert "elodie" not in caplog.text.lower() and "failed" in caplog.text


async def test_permanent_failures_stop_at_once(db: Database) -> None:
    transport = Recorder([PermanentFailure("SMTP 550")])
    dispatcher = Dispatcher(db, {Channel.EMAIL: transport}, clock=Clock())
    notification_id = await queue_email(db)
    await dispatcher.dispatch_once()
    assert await dispatcher.status(notification_id) == (Status.FAILED, 1, "SMTP 550")


async def test_two_dispatchers_send_each_notification_once(db: Database) -> None:
    ids = [await queue_email(db, ()) for _ in range(8)]
    transport = Recorder()
    first = Dispatcher(db, {Channel.EMAIL: transport}, clock=Clock(), batch_size=8)
    second = Dispatcher(db, {Channel.EMAIL: transport}, clock=Clock(), batch_size=8)
    attempted = await asyncio.gather(first.dispatch_once(), second.dispatch_once())
    assert sum(attempted) == 8
    assert sorted(n.id for n in transport.sent) == ids


async def test_purge_takes_the_attachments_along(db: Database) -> None:
    clock = Clock()
    dispatcher = Dispatcher(db, {Channel.EMAIL: Recorder()}, clock=clock)
    await queue_email(db)
    pending = await queue_email(db)
    await dispatcher.dispatch_once()
    async with db.begin() as conn:  # the second stays pending: as if its transport were down
        await conn.execute(
            sa.text("UPDATE kit_notifications SET status = 'pending' WHERE id = :id"),
            {"id": pending},
        )
    clock.now += timedelta(days=91)
    assert await dispatcher.purge(timedelta(days=90)) == 1
    async with db.connect() as conn:
        left = (await conn.execute(sa.select(notification_attachments.c.notification_id))).all()
    assert [row[0] for row in left] == [pending]


# --- files ----------------------------------------------------------------------------------------
async def test_files_are_rfc5322_or_text_and_private(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "outbox"
    files = FileTransport(out, sender="SI-DEP <noreply@sidep.example.fr>")
    dispatcher = Dispatcher(db, dict.fromkeys(Channel, files), clock=Clock())
    email_id = await queue_email(db)
    async with db.begin() as conn:
        sms_id = await enqueue(conn, "sms", "+33 6 12 34 56 78", "", "Résultat disponible")
        letter_id = await enqueue(conn, "letter", "Mme Dupont\n1 rue de la Paix\n75002 Paris",
                                  "Votre résultat", BODY)  # fmt: skip
    assert await dispatcher.dispatch_once() == 3
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        f"{email_id:012d}-email.eml",
        f"{sms_id:012d}-sms.txt",
        f"{letter_id:012d}-letter.txt",
    ]
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    message = message_from_bytes((out / names[0]).read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    assert (message["To"], message["Subject"]) == ("elodie.dupont@example.fr", "Votre résultat")
    assert message["From"] == "SI-DEP <noreply@sidep.example.fr>"
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content().rstrip("\n") == BODY
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "resultat.pdf" and attached.get_content() == PDF.content
    assert (out / names[1]).read_text() == "To: +33 6 12 34 56 78\n\nRésultat disponible\n"


# --- a real SMTP server on loopback ---------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.startswith("unknown"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted"


def authenticator(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"sidep", b"s3cret!")
    return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[tuple[Mailbox, int, ssl.SSLContext]]:
    cert, key = self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    mailbox, port = Mailbox(), free_port()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=port, tls_context=server_tls,
        require_starttls=True, authenticator=authenticator, auth_required=True,
    )  # fmt: skip
    controller.start()
    try:
        yield mailbox, port, ssl.create_default_context(cafile=str(cert))
    finally:
        controller.stop()


async def test_smtp_with_starttls_and_auth(
    db: Database, smtp: tuple[Mailbox, int, ssl.SSLContext]
) -> None:
    mailbox, port, client_tls = smtp

    def transport(password: str) -> SmtpTransport:
        return SmtpTransport(
            "127.0.0.1", port, sender="noreply@sidep.example.fr", security="starttls",
            username="sidep", password=password, tls_context=client_tls, timeout=10,
        )  # fmt: skip

    clock = Clock()
    wrong = Dispatcher(db, {Channel.EMAIL: transport("wrong")}, clock=clock)
    notification_id = await queue_email(db)
    await wrong.dispatch_once()
    assert await wrong.status(notification_id) == (Status.PENDING, 1, "SMTP authentication failed")
    right = Dispatcher(db, {Channel.EMAIL: transport("s3cret!")}, clock=clock)
    clock.now += timedelta(minutes=1)
    await right.dispatch_once()
    assert (await right.status(notification_id))[0] == Status.SENT
    [(sender, recipients, content)] = mailbox.messages
    assert (sender, recipients) == ("noreply@sidep.example.fr", ["elodie.dupont@example.fr"])
    message = message_from_bytes(content, policy=policy.default)
    assert [a.get_filename() for a in message.iter_attachments()] == ["resultat.pdf"]  # type: ignore[attr-defined]
    async with db.begin() as conn:
        refused = await enqueue(conn, "email", "unknown@example.fr", "s", "b")
    await right.dispatch_once()
    assert await right.status(refused) == (Status.FAILED, 1, "SMTP recipient refused")


# --- an HTTP SMS gateway --------------------------------------------------------------------------
@pytest.fixture
async def gateway() -> AsyncIterator[tuple[str, list[Any]]]:
    received: list[Any] = []
    answers = [503, 200, 400]

    async def sms(request: web.Request) -> web.Response:
        received.append((request.headers["Authorization"], await request.json()))
        return web.Response(status=answers.pop(0))

    app = web.Application()
    app.router.add_post("/sms", sms)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("/sms")), received
    finally:
        await server.close()


async def test_sms_through_an_http_gateway(db: Database, gateway: tuple[str, list[Any]]) -> None:
    url, received = gateway
    transport = HttpSmsTransport(url, "gateway-token")
    clock = Clock()
    dispatcher = Dispatcher(db, {Channel.SMS: transport}, clock=clock)
    async with db.begin() as conn:
        first = await enqueue(conn, "sms", "+33 6 12 34 56 78", "", "Résultat disponible")
        second = await enqueue(conn, "sms", "+33700000000", "", "Résultat disponible")
    try:
        await dispatcher.dispatch_once()  # 503 for the first, 200 for the second
        clock.now += timedelta(minutes=1)
        await dispatcher.dispatch_once()  # 400 for the first: permanent
    finally:
        await transport.close()
    assert await dispatcher.status(second) == (Status.SENT, 1, None)
    assert await dispatcher.status(first) == (Status.FAILED, 2, "SMS gateway 400")
    assert received[0] == (
        "Bearer gateway-token",
        {"to": "+33612345678", "text": "Résultat disponible", "reference": str(first)},
    )


def test_only_known_smtp_security_modes() -> None:
    with pytest.raises(ValueError, match="starttls, tls or none"):
        SmtpTransport("h", sender="a@b", security="ssl")


def test_transports_from_settings(tmp_path: Path) -> None:
    """Files for everything by default; SMTP and the SMS gateway where a URL is set."""
    files = transports(tmp_path, "sidep@example.fr")
    assert {type(t) for t in files.values()} == {FileTransport} and set(files) == set(Channel)
    chosen = transports(
        tmp_path,
        "sidep@example.fr",
        smtp_url="smtp://relay%40ars:p%3Ass@mail.example.fr",
        sms_url="https://sms.example.fr/send",
        sms_token="t0ken",
    )
    mail = chosen[Channel.EMAIL]
    assert isinstance(mail, SmtpTransport)
    assert (mail.host, mail.port, mail.security) == ("mail.example.fr", 587, "starttls")
    assert (mail.username, mail.password, mail.sender) == ("relay@ars", "p:ss", "sidep@example.fr")
    assert isinstance(chosen[Channel.SMS], HttpSmsTransport)
    assert isinstance(chosen[Channel.LETTER], FileTransport)
    tls = smtp_from_url("smtps://mail.example.fr", "x@example.fr")
    assert (tls.port, tls.security, tls.username) == (465, "tls", None)
    assert smtp_from_url("smtp://localhost:25?security=none", "x@y").security == "none"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"smtp_url": "http://mail.example.fr"}, "smtp:// or smtps://"),
        ({"smtp_url": "smtp://"}, "names no host"),
        ({"smtp_url": "smtp://u:secret@h:99999"}, "port"),
        ({"smtp_url": "smtp://h?security=maybe"}, "security=starttls, tls or none"),
        ({"sms_url": "ftp://sms.example.fr"}, "http:// or https://"),
        ({"sms_url": "https://sms.example.fr"}, "needs its token"),
        ({"sender": "SI-DEP"}, "the sender \\(mail_from\\) is an e-mail address"),
        ({"sender": ""}, "the sender \\(mail_from\\) is an e-mail address"),
    ],
)
def test_transports_refuse_bad_settings(
    tmp_path: Path, kwargs: dict[str, str], message: str
) -> None:
    sender = kwargs.pop("sender", "x@example.fr")
    with pytest.raises(ValueError, match=message) as refused:
        transports(tmp_path, sender, **kwargs)
    assert "secret" not in str(refused.value)


async def test_close_transports_closes_each_distinct_one_once() -> None:
    """One transport serving two channels is closed once; one without close() is skipped."""

    class Closing:
        def __init__(self) -> None:
            self.closed = 0

        async def send(self, notification: Notification) -> None:
            """Never called here."""

        async def close(self) -> None:
            self.closed += 1

    class NoClose:
        async def send(self, notification: Notification) -> None:
            """Never called here."""

    shared, sms = Closing(), Closing()
    await close_transports({Channel.EMAIL: shared, Channel.LETTER: shared, Channel.SMS: sms})
    assert (shared.closed, sms.closed) == (1, 1)
    await close_transports({Channel.EMAIL: NoClose(), Channel.SMS: sms})
    assert sms.closed == 2
