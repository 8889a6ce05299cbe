"""The notification outbox: e-mails, SMS and letters to people (results, instructions).

A service enqueues a notification *in the transaction of the business change* (``enqueue(conn,
...)``), so a result is never recorded without its notification nor the reverse. A
``Dispatcher`` (a periodic job) delivers the pending ones through one transport per channel:

- ``FileTransport(directory)``, the default: one RFC 5322 ``.eml`` per e-mail (with its
  attachments), one ``.txt`` per SMS or letter, written atomically with mode 0600, for a
  printing service, a development machine or a gateway that picks files up;
- ``SmtpTransport``: aiosmtplib, STARTTLS or implicit TLS, credentials from the settings;
- ``HttpSmsTransport``: a JSON POST to an SMS gateway with a bearer token.

``transports(outbox, sender, smtp_url=..., sms_url=..., sms_token=...)`` picks them from a
service's settings: SMTP and the gateway where configured, the file outbox for the rest;
``close_transports(chosen)`` closes them when the service stops.

Each delivery is claimed first (its next attempt pushed a lease ahead), so two dispatchers
never send one notification together; a crash between the send and the record of it sends it
again after the lease: delivery is *at least once*. A temporary failure is retried with an
exponential backoff up to ``max_attempts``; a permanent one (a refused recipient) fails at once.

Contents are personal data: never logged; ``last_error`` holds a failure's kind (``SMTP 550``,
``TimeoutError at smtp.py:12``), never a server's message, which may quote the recipient.
``purge`` deletes delivered and failed notifications past the retention period.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import ssl
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

import aiohttp
import aiosmtplib
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy.ext.asyncio import AsyncConnection

from kit.db import Database, utcnow
from kit.jobs import PeriodicJob, describe_failure
from kit.schema import notification_attachments as attachments_table
from kit.schema import notifications as notifications_table

log = logging.getLogger("kit.notify")

MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
_PHONE = re.compile(r"\+?[0-9]{6,15}")


class Channel(StrEnum):
    """How a notification reaches a person."""

    EMAIL = "email"
    SMS = "sms"
    LETTER = "letter"


class Status(StrEnum):
    """Where a notification is."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file sent with an e-mail (a result sheet, a certificate)."""

    name: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Notification:
    """One notification, as a transport receives it."""

    id: int
    channel: Channel
    recipient: str
    subject: str
    body: str
    attachments: tuple[Attachment, ...]
    attempts: int
    created_at: datetime


class PermanentFailure(Exception):
    """A delivery that will never succeed (recipient refused); ``reason`` is stored and must
    hold no personal data."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryFailure(Exception):
    """A delivery to retry later; the message is stored and holds no personal data."""


class Transport(Protocol):
    """Delivers notifications of one channel; raises to fail (``PermanentFailure`` for good)."""

    async def send(self, notification: Notification) -> None:
        """Deliver one notification."""


# --- enqueueing -----------------------------------------------------------------------------------
def _check(channel: Channel, recipient: str, subject: str, body: str) -> None:
    if not recipient.strip() or len(recipient) > 500:
        raise ValueError("a recipient is 1 to 500 characters")
    if channel is Channel.EMAIL and "@" not in parseaddr(recipient)[1]:
        raise ValueError("an e-mail recipient is an address")
    if channel is Channel.SMS and not _PHONE.fullmatch(recipient.replace(" ", "")):
        raise ValueError("an SMS recipient is a phone number in international form: +33612345678")
    if len(subject) > 500 or "\n" in subject:
        raise ValueError("a subject is one line of at most 500 characters")
    if not body:
        raise ValueError("a notification has a body")


async def enqueue(
    conn: AsyncConnection,
    channel: Channel | str,
    recipient: str,
    subject: str,
    body: str,
    attachments: Sequence[Attachment] = (),
    *,
    now: datetime | None = None,
) -> int:
    """Queue a notification inside the caller's transaction; its id."""
    channel = Channel(channel)
    _check(channel, recipient, subject, body)
    if attachments and channel is not Channel.EMAIL:
        raise ValueError("only e-mails carry attachments")
    if sum(len(a.content) for a in attachments) > MAX_ATTACHMENT_BYTES:
        raise ValueError("attachments are at most 10 MiB together")
    now = now or utcnow()
    notification_id = (
        await conn.execute(
            sa.insert(notifications_table)
            .values(
                channel=channel.value,
                recipient=recipient.strip(),
                subject=subject,
                body=body,
                status=Status.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            .returning(notifications_table.c.id)
        )
    ).scalar_one()
    for attachment in attachments:
        await conn.execute(
            sa.insert(attachments_table).values(
                notification_id=notification_id,
                name=attachment.name,
                content_type=attachment.content_type,
                content=attachment.content,
            )
        )
    return int(notification_id)


# --- dispatching ----------------------------------------------------------------------------------
class NotifyMetrics:
    """Deliveries, retries and failures by channel."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.sent = Counter("kit_notifications_sent", "Delivered", ["channel"], registry=registry)
        self.retried = Counter(
            "kit_notifications_retried", "Failed attempts to retry", ["channel"], registry=registry
        )
        self.failed = Counter(
            "kit_notifications_failed", "Given up", ["channel"], registry=registry
        )


class Dispatcher:
    """Delivers due notifications through one transport per channel."""

    def __init__(
        self,
        db: Database,
        transports: Mapping[Channel, Transport],
        *,
        max_attempts: int = 8,
        backoff_base: timedelta = timedelta(minutes=1),
        backoff_max: timedelta = timedelta(hours=6),
        lease: timedelta = timedelta(minutes=5),
        batch_size: int = 50,
        clock: Callable[[], datetime] = utcnow,
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.db = db
        self.transports = dict(transports)
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.lease = lease
        self.batch_size = batch_size
        self.clock = clock
        self.metrics = metrics

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the ``attempts``-th failed attempt: doubling, bounded."""
        factor: int = 2 ** min(attempts - 1, 30)
        return min(self.backoff_max, self.backoff_base * factor)

    async def dispatch_once(self) -> int:
        """Deliver the notifications due now (one batch); how many were attempted."""
        t = notifications_table
        now = self.clock()
        async with self.db.connect() as conn:
            due = (
                await conn.execute(
                    sa.select(t.c.id, t.c.next_attempt_at)
                    .where(t.c.status == Status.PENDING.value, t.c.next_attempt_at <= now)
                    .where(t.c.channel.in_([c.value for c in self.transports]))
                    .order_by(t.c.next_attempt_at, t.c.id)
                    .limit(self.batch_size)
                )
            ).all()
        attempted = 0
        for notification_id, planned in due:
            notification = await self._claim(notification_id, planned)
            if notification is not None:
                attempted += 1
                await self._deliver(notification)
        return attempted

    async def _claim(self, notification_id: int, planned: datetime) -> Notification | None:
        """Push the next attempt a lease ahead, unless another dispatcher did first."""
        t = notifications_table
        async with self.db.begin() as conn:
            claimed = await conn.execute(
                sa.update(t)
                .where(t.c.id == notification_id, t.c.status == Status.PENDING.value)
                .where(t.c.next_attempt_at == planned)
                .values(next_attempt_at=self.clock() + self.lease)
            )
            if claimed.rowcount != 1:
                return None
            row = (await conn.execute(sa.select(t).where(t.c.id == notification_id))).one()
            files = await conn.execute(
                sa.select(attachments_table)
                .where(attachments_table.c.notification_id == notification_id)
                .order_by(attachments_table.c.id)
            )
            attachments = tuple(Attachment(a.name, a.content_type, a.content) for a in files)
        return Notification(
            row.id, Channel(row.channel), row.recipient, row.subject, row.body, attachments,
            row.attempts, row.created_at,
        )  # fmt: skip

    async def _deliver(self, notification: Notification) -> None:
        channel = notification.channel
        attempts = notification.attempts + 1
        values: dict[str, Any] = {"attempts": attempts}
        try:
            await self.transports[channel].send(notification)
        except PermanentFailure as exc:
            values |= {"status": Status.FAILED.value, "last_error": exc.reason[:200]}
        except Exception as exc:
            reason = str(exc) if isinstance(exc, TemporaryFailure) else describe_failure(exc)
            values["last_error"] = reason[:200]
            if attempts >= self.max_attempts:
                values["status"] = Status.FAILED.value
            else:
                values["next_attempt_at"] = self.clock() + self.backoff(attempts)
        else:
            values |= {"status": Status.SENT.value, "sent_at": self.clock(), "last_error": None}
        async with self.db.begin() as conn:
            await conn.execute(
                sa.update(notifications_table)
                .where(notifications_table.c.id == notification.id)
                .values(**values)
            )
        outcome = values.get("status", "retry")
        if outcome == Status.FAILED.value:
            log.warning(
                "notification %d (%s) failed: %s", notification.id, channel, values["last_error"]
            )
        if self.metrics:
            counter = {"sent": self.metrics.sent, "failed": self.metrics.failed}.get(
                outcome, self.metrics.retried
            )
            counter.labels(channel.value).inc()

    async def status(self, notification_id: int) -> tuple[Status, int, str | None]:
        """A notification's status, attempts and last error."""
        t = notifications_table
        async with self.db.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(t.c.status, t.c.attempts, t.c.last_error).where(
                        t.c.id == notification_id
                    )
                )
            ).one()
        return Status(row.status), row.attempts, row.last_error

    async def purge(self, older_than: timedelta) -> int:
        """Delete sent and failed notifications created more than ``older_than`` ago (their
        attachments with them); how many."""
        t = notifications_table
        cutoff = self.clock() - older_than
        async with self.db.begin() as conn:
            result = await conn.execute(
                sa.delete(t)
                .where(t.c.status != Status.PENDING.value)
                .where(t.c.created_at < cutoff)
            )
            return int(result.rowcount)

    def job(self, interval: float = 10.0) -> PeriodicJob:
        """A periodic job running ``dispatch_once`` (for ``app.cleanup_ctx``)."""
        return PeriodicJob("notifications", interval, self.dispatch_once)


# --- transports -----------------------------------------------------------------------------------
def email_message(notification: Notification, sender: str) -> EmailMessage:
    """The RFC 5322 message of an e-mail notification, with its attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = notification.recipient
    message["Subject"] = notification.subject
    message["Date"] = format_datetime(notification.created_at)
    message["Message-ID"] = make_msgid(idstring=f"n{notification.id}")
    message.set_content(notification.body)
    for attachment in notification.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.name,
        )
    return message


class FileTransport:
    """Writes each notification to a file of ``directory`` (mode 0600, atomically)."""

    def __init__(self, directory: Path, sender: str = "noreply@localhost") -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._write, notification)

    def path_of(self, notification: Notification) -> Path:
        """Where the notification is written."""
        suffix = "eml" if notification.channel is Channel.EMAIL else "txt"
        return self.directory / f"{notification.id:012d}-{notification.channel}.{suffix}"

    def _write(self, notification: Notification) -> None:
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if notification.channel is Channel.EMAIL:
            data = email_message(notification, self.sender).as_bytes()
        else:
            lines = [f"To: {notification.recipient}"]
            if notification.subject:
                lines.append(f"Subject: {notification.subject}")
            data = ("\n".join(lines) + "\n\n" + notification.body + "\n").encode()
        # Written beside its final name, then renamed: a reader never sees half a file.
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".partial-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path_of(notification))
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class SmtpTransport:
    """Sends e-mails through an SMTP server (aiosmtplib)."""

    def __init__(
        self,
        host: str,
        port: int = 587,
        *,
        sender: str,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        if security not in ("starttls", "tls", "none"):
            raise ValueError("SMTP security is starttls, tls or none")
        self.host = host
        self.port = port
        self.sender = sender
        self.security = security
        self.username = username
        self.password = password
        self.timeout = timeout
        self.tls_context = tls_context

    async def send(self, notification: Notification) -> None:
        if notification.channel is not Channel.EMAIL:
            raise PermanentFailure(f"SMTP sends e-mails, not {notification.channel}")
        try:
            await aiosmtplib.send(
                email_message(notification, self.sender),
                hostname=self.host,
                port=self.port,
                username=self.username,
                password=self.password,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                tls_context=self.tls_context,
                timeout=self.timeout,
            )
        except aiosmtplib.SMTPAuthenticationError:
            raise TemporaryFailure("SMTP authentication failed") from None  # a setting to fix
        except aiosmtplib.SMTPRecipientsRefused:
            raise PermanentFailure("SMTP recipient refused") from None
        except aiosmtplib.SMTPResponseException as exc:
            if 500 <= exc.code < 600:
                raise PermanentFailure(f"SMTP {exc.code}") from None
            raise TemporaryFailure(f"SMTP {exc.code}") from None


class HttpSmsTransport:
    """Sends SMS through an HTTP gateway: ``POST url`` with ``{"to", "text", "reference"}``
    and ``Authorization: Bearer <token>``; any 2xx is delivered."""

    def __init__(self, url: str, token: str, *, timeout: float = 15.0) -> None:
        self.url = url
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    async def send(self, notification: Notification) -> None:
        if notification.channel is not Channel.SMS:
            raise PermanentFailure(f"the SMS gateway sends SMS, not {notification.channel}")
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        body = {
            "to": notification.recipient.replace(" ", ""),
            "text": notification.body,
            "reference": str(notification.id),
        }
        async with self._session.post(
            self.url,
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=self.timeout),
        ) as response:
            if 200 <= response.status < 300:
                return
            if 400 <= response.status < 500 and response.status not in (408, 429):
                raise PermanentFailure(f"SMS gateway {response.status}")
            raise TemporaryFailure(f"SMS gateway {response.status}")

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


def smtp_from_url(url: str, sender: str) -> SmtpTransport:
    """An ``SmtpTransport`` from a URL: ``smtp://[user:password@]host[:port]`` (STARTTLS,
    port 587 by default), ``smtps://...`` (implicit TLS, 465) or ``smtp://...?security=none``
    (plain, for a relay on the same host). Percent-escapes in the user and password are
    decoded. ValueError, naming the part at fault and never the password, on anything else."""
    parts = urlsplit(url)
    if parts.scheme not in ("smtp", "smtps"):
        raise ValueError("an SMTP URL starts with smtp:// or smtps://")
    if not parts.hostname:
        raise ValueError("the SMTP URL names no host")
    query = parse_qs(parts.query)
    security = "tls" if parts.scheme == "smtps" else query.get("security", ["starttls"])[0]
    if security not in ("starttls", "tls", "none") or set(query) - {"security"}:
        raise ValueError("the SMTP URL's only option is security=starttls, tls or none")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the SMTP URL's port is not a number from 1 to 65535") from None
    return SmtpTransport(
        parts.hostname,
        port or (465 if security == "tls" else 587),
        sender=sender,
        security=security,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def transports(
    outbox: Path, sender: str, *, smtp_url: str = "", sms_url: str = "", sms_token: str = ""
) -> dict[Channel, Transport]:
    """Each channel's transport, as a service's settings choose them: e-mails through SMTP
    when ``smtp_url`` is set (``smtp_from_url``), SMS through the HTTP gateway when ``sms_url``
    is set (with ``sms_token``), and the rest, letters always, to files in ``outbox`` for the
    printing service or a gateway that picks them up. ValueError, naming the setting at fault
    and never a password, on a sender that is no address or a bad URL."""
    if "@" not in parseaddr(sender)[1]:
        raise ValueError("the sender (mail_from) is an e-mail address, e.g. Name <noreply@host>")
    files = FileTransport(outbox, sender)
    chosen: dict[Channel, Transport] = {channel: files for channel in Channel}
    if smtp_url:
        chosen[Channel.EMAIL] = smtp_from_url(smtp_url, sender)
    if sms_url:
        if urlsplit(sms_url).scheme not in ("http", "https"):
            raise ValueError("the SMS gateway's URL starts with http:// or https://")
        if not sms_token:
            raise ValueError("the SMS gateway needs its token")
        chosen[Channel.SMS] = HttpSmsTransport(sms_url, sms_token)
    return chosen


async def close_transports(chosen: Mapping[Channel, Transport]) -> None:
    """Close each distinct transport of ``chosen`` that has a ``close()`` (the SMS gateway's
    HTTP session), once even when it serves several channels (the file outbox does)."""
    for transport in {id(t): t for t in chosen.values()}.values():
        close = getattr(transport, "close", None)
        if close is not None:
            await close()
