"""The MLLP listener over a real loopback socket: each message answered with its ACK after
the commit, refusals with AE, garbage with AR, many senders committed together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hl7.mllp import open_hl7_connection

from kit import events
from sidep.access import Access
from sidep.intake import Intake
from sidep.mllp import MLLP_ACTOR, Committer, MllpListener
from sidep.model import SourceFormat
from sidep.service import SidepService
from tests.sidep import fakeparse
from tests.sidep.fakeparse import message


@pytest.fixture
async def port(service: SidepService) -> AsyncIterator[int]:
    committer = Committer(service, max_batch=50)
    listener = MllpListener(Intake({SourceFormat.HL7: fakeparse.parse}), committer)
    bound = await listener.start("127.0.0.1", 0)
    try:
        yield bound
    finally:
        await listener.stop()
        await committer.stop()


async def exchange(port: int, *blocks: bytes) -> list[list[str]]:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    answers = []
    try:
        for block in blocks:
            writer.writeblock(block)
            await writer.drain()
            ack = await asyncio.wait_for(reader.readblock(), 30)
            answers.append([s for s in ack.decode().split("\r") if s])
    finally:
        writer.close()
    return answers


def msa(answer: list[str]) -> list[str]:
    return next(s for s in answer if s.startswith("MSA")).split("|")


async def test_a_message_is_acknowledged_after_it_is_stored(
    service: SidepService, port: int
) -> None:
    (answer,) = await exchange(port, message(control="M1"))
    assert msa(answer)[:3] == ["MSA", "AA", "M1"]
    # the ACK came after the commit: the result is there, and its event
    rows = await service.results(Access("admin"), MLLP_ACTOR)
    assert [(r.sample_id, r.result) for r in rows] == [("S1", "P")]
    assert len((await events.read(service.store.db)).events) == 1


async def test_resent_refused_and_garbage(service: SidepService, port: int) -> None:
    answers = await exchange(
        port,
        message(control="M1"),
        message(control="M1"),  # re-sent: accepted, counted once
        message(control="M2", sample="S2", result="X?"),
        b"hello, this is not HL7",
        b"MSH|^~\\&|A|B|C|D|20261209||ADT^A01|M3|P|2.5\r",
    )
    codes = [msa(a)[1] for a in answers]
    assert codes == ["AA", "AA", "AE", "AR", "AR"]
    assert "OBX-5" in msa(answers[2])[3]
    assert "ADT" in msa(answers[4])[3]
    assert len(await service.results(Access("admin"), MLLP_ACTOR)) == 1


async def test_many_senders_are_committed_together(service: SidepService, port: int) -> None:
    async def sender(n: int) -> list[str]:
        blocks = [
            message(control=f"C{n}-{i}", sample=f"S{n}-{i}", result="N", nir="") for i in range(5)
        ]
        return [msa(a)[1] for a in await exchange(port, *blocks)]

    results = await asyncio.gather(*(sender(n) for n in range(8)))
    assert all(codes == ["AA"] * 5 for codes in results)
    assert len(await service.results(Access("admin"), MLLP_ACTOR)) == 40


async def test_a_broken_block_is_rejected_and_the_connection_closed(port: int) -> None:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    writer.write(b"no start block\x1c\r")
    await writer.drain()
    ack = await asyncio.wait_for(reader.readblock(), 30)
    assert b"MSA|AR" in ack
    assert await asyncio.wait_for(reader.read(), 30) == b""
    writer.close()


async def test_the_same_message_sent_twice_at_once_is_stored_once(
    service: SidepService, port: int
) -> None:
    same = message(control="TWICE", sample="S-TWICE")
    answers = await asyncio.gather(*(exchange(port, same) for _ in range(6)))
    assert [msa(a[0])[1] for a in answers] == ["AA"] * 6
    rows = await service.results(Access("admin"), MLLP_ACTOR)
    assert [r.sample_id for r in rows] == ["S-TWICE"]
    assert len((await events.read(service.store.db)).events) == 1


async def test_a_huge_message_is_rejected(port: int) -> None:
    reader, writer = await open_hl7_connection("127.0.0.1", port)
    writer.writeblock(message() + b"NTE|1||" + b"x" * (5 * 1024 * 1024) + b"\r")
    await writer.drain()
    ack = await asyncio.wait_for(reader.readblock(), 60)
    assert b"MSA|AR" in ack and b"too large" in ack
    writer.close()


async def test_a_batch_is_answered_by_a_batch_of_acks(service: SidepService, port: int) -> None:
    batch = (
        b"FHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||F1\r"
        b"BHS|^~\\&|LAB|750012345|SIDEP|DGS|20261210||||B1\r"
        + message(control="M1", sample="S1")
        + message(control="M2", sample="S2", result="x")
        + message(control="M3", sample="S3", result="N")
        + b"BTS|3\rFTS|1\r"
    )
    (answer,) = await exchange(port, batch)
    kinds = [s.split("|")[0] for s in answer]
    assert kinds == ["FHS", "BHS"] + ["MSH", "MSA"] * 2 + ["ERR", "MSH", "MSA", "BTS", "FTS"]
    assert [msa(answer[i:])[1:3] for i, s in enumerate(answer) if s.startswith("MSA")] == [
        ["AA", "M1"],
        ["AE", "M2"],
        ["AA", "M3"],
    ]
    assert answer[1].split("|")[11] == "B1" and answer[-2] == "BTS|3"
    # the ACK came after the commit of the accepted ones
    rows = await service.results(Access("admin"), MLLP_ACTOR)
    assert sorted(r.sample_id for r in rows) == ["S1", "S3"]


async def test_msa3_holds_the_reason_alone_and_err8_where_it_was_found(port: int) -> None:
    """ "MLLP MSH-10 <a long control id>: " took most of MSA-3's 80 characters and cut the
    reason; MSA-3 has the reason only, ERR-8 the whole text."""
    control = "LAB-2026-12-09-000000000000000042"
    (answer,) = await exchange(port, message(control=control, result="X" * 40))
    reason = f"OBX-5 {'X' * 40!r} is not a result"
    assert msa(answer)[:4] == ["MSA", "AE", control, reason]
    err = next(s for s in answer if s.startswith("ERR")).split("|")
    assert err[8] == f"MLLP MSH-10 {control}: {reason}"
