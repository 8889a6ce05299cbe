"""Benchmark of SI-DEP's intake: HL7 v2 ORU^R01 messages over MLLP into PostgreSQL, each ACK
sent only after its commit. ``python -m sidep.bench [--database URL] [--messages 20000]
[--connections 64] [--positive 0.1] [--reference-parser]``. Prints figures; it is not a test.

The server (listener, parser, committer, service) runs in this process, on one core; the labs
are another process (``multiprocessing``) holding ``--connections`` MLLP connections, each
sending its next message once it has the ACK of the previous one, as lab systems do. Every
message is one result of a distinct patient (name, birth date, NIR, postcode), a tenth of them
positive (each positive writes its outbox event and pending notice in the same transaction).
Without ``--database``, a fresh PostgreSQL database is made on the local server and dropped.
The parser is ``sidep.formats.hl7`` when installed (its fast reader, or python-hl7's parser
with ``--reference-parser``); else a minimal stand-in reader of the
benchmark's own messages (printed in the figures), so that the figure is the transport and
the store's, not the parser's.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import secrets
import time
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from kit.db import Database
from sidep.intake import Intake
from sidep.mllp import Committer, MllpListener
from sidep.model import (
    LabResult,
    Method,
    Parsed,
    Patient,
    Refusal,
    Result,
    Sex,
    SourceFormat,
    Status,
)
from sidep.service import SidepService
from sidep.store import SidepStore

SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


def message(n: int, positive: bool) -> bytes:
    """The n-th lab message: one SARS-CoV-2 RT-PCR result of a distinct patient."""
    day = date(2020, 11, 1) + timedelta(days=n % 30)
    born = date(1940, 1, 1) + timedelta(days=(n * 37) % 25000)
    segments = [
        f"MSH|^~\\&|LABSYS|{750000000 + n % 5000}|SIDEP|SIDEP|{day:%Y%m%d}180000||"
        f"ORU^R01^ORU_R01|B{n}|P|2.5",
        f"PID|1||{1_800_000_000_000 + n}^^^INS-NIR||NOM{n}^PRENOM{n % 977}||{born:%Y%m%d}|"
        f"{'MF'[n % 2]}|||{n % 90 + 1} rue de la Paix^^Ville^^{(n % 95 + 1):02d}100",
        f"OBR|1||S{n}|94500-6^SARS-CoV-2 RNA^LN|||{day:%Y%m%d}090000",
        f"OBX|1|CWE|94500-6^SARS-CoV-2 RNA^LN||{'P' if positive else 'N'}||||||F",
    ]
    return ("\r".join(segments) + "\r").encode()


def standin_parse(data: bytes, where: str) -> Parsed:
    """A minimal reader of this benchmark's own messages (when sidep.formats is absent)."""
    fields = {s[:3]: s.split("|") for s in data.decode().split("\r") if s}
    try:
        msh, pid, obr, obx = fields["MSH"], fields["PID"], fields["OBR"], fields["OBX"]
        last, _, first = pid[5].partition("^")
        born = pid[7]
        postcode = pid[11].split("^")[4]
        return Parsed(
            results=(
                LabResult(
                    lab=msh[3][:9], sample_id=obr[3], loinc=obx[3].split("^")[0],
                    method=Method.PCR, result=Result(obx[5]),
                    sampled_at=datetime.strptime(obr[7], "%Y%m%d%H%M%S").replace(tzinfo=UTC),
                    validated_at=None, status=Status.FINAL,
                    patient=Patient(
                        nir=pid[3].split("^")[0], nir_valid=False, last_name=last,
                        first_name=first,
                        birth_date=date(int(born[:4]), int(born[4:6]), int(born[6:8])),
                        sex=Sex(pid[8]), postcode=postcode,
                    ),
                    source=SourceFormat.HL7, dep=postcode[:2],
                ),
            )
        )  # fmt: skip
    except (KeyError, IndexError, ValueError) as exc:
        return Parsed(refusals=(Refusal(where, type(exc).__name__),))


def labs(port: int, messages: int, connections: int, positive: float, out: object) -> None:
    """The labs' side (its own process): send every message, wait for each ACK."""

    async def connection(first: int) -> int:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        accepted = 0
        for n in range(first, messages, connections):
            block = message(n, (n * 7919) % 1000 < positive * 1000)
            writer.write(b"\x0b" + block + b"\x1c\r")
            ack = await reader.readuntil(b"\x1c\r")
            accepted += b"MSA|AA|" in ack
        writer.close()
        return accepted

    async def run() -> tuple[int, float]:
        start = time.perf_counter()
        counts = await asyncio.gather(*(connection(i) for i in range(connections)))
        return sum(counts), time.perf_counter() - start

    accepted, seconds = asyncio.run(run())
    out.send((accepted, seconds))  # type: ignore[attr-defined]


async def _admin(statement: str) -> None:
    engine = create_async_engine(
        SERVER.replace("postgresql://", "postgresql+asyncpg://"), isolation_level="AUTOCOMMIT"
    )
    try:
        async with engine.connect() as conn:
            await conn.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def intake(reference: bool = False) -> tuple[Intake, str]:
    try:
        import importlib

        hl7 = importlib.import_module("sidep.formats.hl7")
        if reference:

            def reference_parse(data: bytes, where: str) -> Parsed:
                parsed: Parsed = hl7.parse(data, where, reference=True)
                return parsed

            return Intake({SourceFormat.HL7: reference_parse}), "sidep.formats.hl7 (python-hl7)"
        return Intake(), "sidep.formats.hl7"
    except ImportError:
        return Intake({SourceFormat.HL7: standin_parse}), "stand-in (sidep.formats absent)"


async def main(
    database: str | None,
    messages: int,
    connections: int,
    positive: float,
    reference: bool = False,
) -> None:
    name = None
    if database is None:
        name = f"sidep_bench_{secrets.token_hex(4)}"
        await _admin(f'CREATE DATABASE "{name}"')
        database = SERVER.rsplit("/", 1)[0] + f"/{name}"
    service = SidepService(SidepStore(Database(database)), secrets.token_bytes(32))
    await service.open()
    reader, parser_name = intake(reference)
    committer = Committer(service, max_batch=500)
    listener = MllpListener(reader, committer)
    port = await listener.start("127.0.0.1", 0)
    receive, send = multiprocessing.Pipe(duplex=False)
    client = multiprocessing.get_context("spawn").Process(
        target=labs, args=(port, messages, connections, positive, send)
    )
    cpu0 = time.process_time()
    client.start()
    while not receive.poll():
        await asyncio.sleep(0.05)
    accepted, seconds = receive.recv()
    cpu = time.process_time() - cpu0
    client.join()
    await listener.stop()
    await committer.stop()
    async with service.store.db.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT count(*) FROM sidep_results"))).scalar_one()
        outbox = (await conn.execute(sa.text("SELECT count(*) FROM kit_outbox"))).scalar_one()
    await service.close()
    if name is not None:
        await _admin(f'DROP DATABASE "{name}" WITH (FORCE)')
    print(f"parser: {parser_name}")
    print(f"messages: {messages} over {connections} MLLP connections, {positive:.0%} positive")
    print(f"ACK AA: {accepted}; results stored: {stored}; outbox events: {outbox}")
    print(
        f"commits: {committer.commits} (mean {messages / max(1, committer.commits):.1f} per commit)"
    )
    print(f"time in ingest transactions: {committer.commit_seconds:.2f} s")
    print(f"wall: {seconds:.2f} s -> {messages / seconds:,.0f} results/s (ACK after commit)")
    print(f"server process CPU: {cpu:.2f} s ({messages / cpu:,.0f} results per CPU-second)")


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", help="postgresql://... (default: a fresh local one)")
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--positive", type=float, default=0.1)
    parser.add_argument(
        "--reference-parser",
        action="store_true",
        help="read HL7 with python-hl7's parser (the reference) instead of the fast reader",
    )
    args = parser.parse_args()
    asyncio.run(
        main(args.database, args.messages, args.connections, args.positive, args.reference_parser)
    )


if __name__ == "__main__":
    cli()
