"""HL7 v2 over MLLP: the TCP listener lab systems send their ORU^R01 messages to, and the
group committer every transport writes through.

Each block (``<VT> message <FS><CR>``, python-hl7's asyncio MLLP streams) is one message; it
is parsed, stored, and only AFTER the commit is its ACK written back (``AA`` stored or already
stored, ``AE`` refused with the reason, ``AR`` not a message we take). A lab sends the next
message once it has the ACK, so many labs' messages wait together for the database: the
``Committer`` writes whatever is waiting in ONE transaction (group commit), then answers each.
If a group fails, each of its messages is tried alone, so one bad message cannot fail others.
A block holding a batch file (``FHS``/``BHS``) is answered by a response batch with each of
its messages' ACKs (``sidep.ack``), written once all of them are committed.

The listener trusts its network, as the labs' interfaces did (a VPN, or a TLS tunnel in front
of it); the HTTP intake authenticates each lab with an API key.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

from hl7.mllp import start_hl7_server
from hl7.mllp.exceptions import InvalidBlockError

from kit.audit import Actor
from kit.jobs import describe_failure
from sidep.ack import (
    AckCode,
    BatchFile,
    Header,
    build_ack,
    build_batch_ack,
    is_oru,
    read_header,
    split_batch,
)
from sidep.intake import Intake
from sidep.model import Parsed, Refusal, SourceFormat
from sidep.service import Counts, SidepService

log = logging.getLogger("sidep.mllp")

MLLP_ACTOR = Actor("mllp", "lab")
MAX_MESSAGE = 4 * 1024 * 1024
"""A block longer than this is refused (and the connection closed)."""
STORE_FAILED = "not stored (temporary failure): send it again"


class StoreFailed(Exception):
    """The database did not take the message (the sender should retry)."""


@dataclass(slots=True)
class _Waiting:
    parsed: Parsed
    actor: Actor
    done: asyncio.Future[Counts]


class Committer:
    """Group commit: ``submit`` queues a parsed message and returns once it is committed."""

    def __init__(self, service: SidepService, max_batch: int = 500, workers: int = 2) -> None:
        self.service = service
        self.max_batch = max_batch
        self.workers = workers
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self.commits = 0
        self.commit_seconds = 0.0

    async def start(self) -> None:
        """Start the writers: ``workers`` transactions may be open at once (one waits on
        the database while the next batch forms; SQLite serialises them anyway)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._run(), name=f"sidep-committer-{n}")
                for n in range(self.workers)
            ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while not self._queue.empty():
            self._queue.get_nowait().done.set_exception(StoreFailed("stopping"))

    async def submit(self, parsed: Parsed, actor: Actor) -> Counts:
        """Store ``parsed`` (with others waiting); its counts. StoreFailed if not stored."""
        if not parsed.results:
            return Counts(refusals=parsed.refusals)
        if not self._tasks:
            await self.start()
        done: asyncio.Future[Counts] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Waiting(parsed, actor, done))
        return await done

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            await self._commit(batch)

    async def _commit(self, batch: list[_Waiting]) -> None:
        started = time.perf_counter()
        try:
            counts = await self.service.ingest_many(
                [w.parsed for w in batch], [w.actor for w in batch]
            )
        except Exception as exc:
            if len(batch) > 1:
                for waiting in batch:
                    await self._commit([waiting])
                return
            log.error("a message could not be stored: %s", describe_failure(exc))
            if not batch[0].done.done():
                batch[0].done.set_exception(StoreFailed(STORE_FAILED))
            return
        self.commits += 1
        self.commit_seconds += time.perf_counter() - started
        for waiting, count in zip(batch, counts, strict=True):
            if not waiting.done.done():
                waiting.done.set_result(count)


def reasons(refusals: tuple[Refusal, ...]) -> str:
    """The refusals of a message as one line."""
    return "; ".join(f"{r.where}: {r.reason}" if r.where else r.reason for r in refusals)


class AckNumbers:
    """Control ids of our ACKs: a prefix of this process's start and a counter. One per
    process (``AckNumbers.of_process()``), shared by HTTP and MLLP: two counters started in
    the same second would hand out the same ids."""

    _process: ClassVar[AckNumbers | None] = None

    def __init__(self) -> None:
        self._prefix = datetime.now(UTC).strftime("%y%m%d%H%M%S")
        self._count = itertools.count(1)

    @classmethod
    def of_process(cls) -> AckNumbers:
        """The process's one counter (created on first use)."""
        if cls._process is None:
            cls._process = cls()
        return cls._process

    def next(self) -> str:
        return f"SIDEP{self._prefix}{next(self._count)}"


async def answer_message(
    data: bytes,
    intake: Intake,
    committer: Committer,
    actor: Actor,
    numbers: AckNumbers,
    where: str,
    check: Callable[[Parsed], Parsed] | None = None,
) -> tuple[bytes, AckCode, Counts]:
    """Parse, store and acknowledge one HL7 v2 message (MLLP and HTTP alike); a batch file
    (``FHS``/``BHS``) is answered by a response batch holding each message's ACK."""
    batch = split_batch(data)
    if batch is not None:
        return await _answer_batch(batch, intake, committer, actor, numbers, where, check)
    header = read_header(data)
    now = datetime.now(UTC)
    if header is None:
        reason = "not an HL7 v2 message (no MSH segment)"
        return _ack(header, AckCode.REJECTED, now, numbers, reason, where)
    if not is_oru(header):
        reason = f"only ORU results are taken, not {header.message_type or 'an unnamed type'}"
        return _ack(header, AckCode.REJECTED, now, numbers, reason, where)
    where = f"{where} MSH-10 {header.control_id}" if header.control_id else where
    parsed = intake.parse(data, where, SourceFormat.HL7)
    if check is not None:
        parsed = check(parsed)
    try:
        counts = await committer.submit(parsed, actor)
    except StoreFailed as exc:
        return _ack(header, AckCode.ERROR, now, numbers, str(exc), where)
    if counts.refusals:
        return (
            build_ack(
                header,
                AckCode.ERROR,
                now,
                numbers.next(),
                reasons(counts.refusals),
                summary="; ".join(r.reason for r in counts.refusals),
            ),
            AckCode.ERROR,
            counts,
        )
    return build_ack(header, AckCode.ACCEPTED, now, numbers.next()), AckCode.ACCEPTED, counts


_SEVERITY = {AckCode.ACCEPTED: 0, AckCode.ERROR: 1, AckCode.REJECTED: 2}


async def _answer_batch(
    batch: BatchFile,
    intake: Intake,
    committer: Committer,
    actor: Actor,
    numbers: AckNumbers,
    where: str,
    check: Callable[[Parsed], Parsed] | None,
) -> tuple[bytes, AckCode, Counts]:
    """Each message of a batch file parsed, stored and acknowledged on its own (they are
    submitted together, so they share group commits, in order), the ACKs in a response batch
    (``sidep.ack``). Its code is the worst of its messages'."""
    answers = await asyncio.gather(
        *(
            answer_message(message, intake, committer, actor, numbers, f"{where} batch", check)
            for message in batch.messages
        )
    )
    counts = Counts()
    code = AckCode.ACCEPTED
    for _ack_bytes, one_code, one_counts in answers:
        counts = counts + one_counts
        code = max(code, one_code, key=_SEVERITY.__getitem__)
    ack = build_batch_ack(batch, [a for a, _, _ in answers], datetime.now(UTC), numbers.next())
    return ack, code, counts


def _ack(
    header: Header | None,
    code: AckCode,
    now: datetime,
    numbers: AckNumbers,
    reason: str,
    where: str,
) -> tuple[bytes, AckCode, Counts]:
    counts = Counts(refusals=(Refusal(where, reason),))
    return build_ack(header, code, now, numbers.next(), reason), code, counts


class MllpListener:
    """The MLLP server: one task per connection, messages answered in order."""

    def __init__(self, intake: Intake, committer: Committer) -> None:
        self.intake = intake
        self.committer = committer
        self.numbers = AckNumbers.of_process()
        self._server: asyncio.Server | None = None
        self.received = 0

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (port 0: any free one); the port listened on."""
        self._server = await start_hl7_server(self._connection, host, port, limit=MAX_MESSAGE)
        sockets = self._server.sockets
        return int(sockets[0].getsockname()[1]) if sockets else port

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _connection(self, reader: object, writer: object) -> None:
        from hl7.mllp import HL7StreamReader, HL7StreamWriter

        assert isinstance(reader, HL7StreamReader) and isinstance(writer, HL7StreamWriter)
        try:
            while True:
                try:
                    block: bytes = await reader.readblock()
                except asyncio.IncompleteReadError:
                    return  # the sender closed the connection
                except (ValueError, InvalidBlockError) as exc:
                    reason = (
                        "message too large"
                        if isinstance(exc, ValueError)
                        else "not an MLLP block (no <VT> start)"
                    )
                    ack = build_ack(
                        None, AckCode.REJECTED, datetime.now(UTC), self.numbers.next(), reason
                    )
                    writer.writeblock(ack)
                    await writer.drain()
                    return  # the stream is out of step: close it
                self.received += 1
                ack, _code, _counts = await answer_message(
                    block, self.intake, self.committer, MLLP_ACTOR, self.numbers, "MLLP"
                )
                writer.writeblock(ack)
                await writer.drain()
        except ConnectionError:
            return
        finally:
            writer.close()
