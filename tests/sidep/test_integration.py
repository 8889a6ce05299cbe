"""The service with the real parsers (``sidep.formats``): public and French example messages
through MLLP, the HTTP endpoints and ``robert sidep ingest``, each ACKed or answered after
its commit, one person for the same patient sent by three labs' formats."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from hl7.mllp import open_hl7_connection

from cli.main import main
from kit import events
from kit.audit import CONSOLE
from sidep.access import OPERATOR
from sidep.app import create_app, mount
from sidep.intake import Intake
from sidep.mllp import Committer, MllpListener
from sidep.service import SidepService
from sidep.settings import Settings
from tests.sidep.conftest import SECRET

DATA = Path(__file__).resolve().parent / "data"
FRENCH_ORU = (DATA / "french_oru.hl7").read_bytes()


@pytest.fixture
async def mllp_port(service: SidepService) -> AsyncIterator[int]:
    committer = Committer(service)
    listener = MllpListener(Intake(), committer)
    port = await listener.start("127.0.0.1", 0)
    try:
        yield port
    finally:
        await listener.stop()
        await committer.stop()


async def test_a_french_oru_over_mllp(service: SidepService, mllp_port: int) -> None:
    reader, writer = await open_hl7_connection("127.0.0.1", mllp_port)
    try:
        for _ in range(2):  # sent, then re-sent: accepted both times, stored once
            writer.writeblock(FRENCH_ORU.replace(b"\n", b"\r").rstrip(b"\r") + b"\r")
            await writer.drain()
            ack = (await asyncio.wait_for(reader.readblock(), 30)).decode()
            assert "MSA|AA|MSG-001" in ack
    finally:
        writer.close()
    rows = await service.results(OPERATOR, CONSOLE)
    assert [(r.lab, r.sample_id, r.loinc, r.result, r.dep) for r in rows] == [
        ("750712184", "SMP-42", "94500-6", "P", "2A")
    ]
    (event,) = (await events.read(service.store.db)).events
    assert event.payload["patient"]["nir"] == "295109912611193"
    assert event.payload["patient"]["first_name"] == "CÉLINE"


async def test_a_public_batch_file_over_mllp(service: SidepService, mllp_port: int) -> None:
    # CDC PRIME ReportStream's example: FHS/BHS, one ORU^R01 with no French FINESS anywhere
    data = (DATA / "reportstream_example.hl7").read_bytes().replace(b"\n", b"\r")
    reader, writer = await open_hl7_connection("127.0.0.1", mllp_port)
    try:
        writer.writeblock(data)
        await writer.drain()
        ack = (await asyncio.wait_for(reader.readblock(), 30)).decode()
    finally:
        writer.close()
    segments = [s for s in ack.split("\r") if s]
    assert [s[:3] for s in segments] == ["FHS", "BHS", "MSH", "MSA", "ERR", "BTS", "FTS"]
    assert "MSA|AE|1234d1d1-95fe-462c-8ac6-46728dba581c|" in ack and "FINESS" in ack
    assert segments[-2] == "BTS|1" and segments[-1] == "FTS|1"


@pytest.fixture
async def http_url(service: SidepService, tmp_path: Path) -> AsyncIterator[str]:
    settings = Settings(database="sqlite:///unused", secret=SECRET, data_dir=str(tmp_path))
    root = web.Application()
    mount(root, create_app(settings, service, manage=False))
    server = TestServer(root, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


async def test_fhir_and_hprim_over_http(service: SidepService, http_url: str) -> None:
    from kit.auth.apikeys import ApiKeyStore
    from sidep.app import API_KEY_PREFIX

    keys = ApiKeyStore(service.store.db, API_KEY_PREFIX)
    _, paix = await keys.create("labo de la paix", "lab", "finess:750712184")
    _, corse = await keys.create("labo corse", "lab", "finess:2B0000251")
    async with aiohttp.ClientSession() as client:
        bundle = (DATA / "french_bundle.json").read_bytes()
        fhir = f"{http_url}/sidep/api/v1/fhir"
        async with client.post(fhir, data=bundle, headers={"Authorization": f"Bearer {paix}"}) as r:
            outcome = await r.json()
            assert r.status == 422, outcome  # the bundle is another lab's
            assert "may not send results of lab 2B0000251" in json.dumps(outcome)
        async with client.post(
            fhir, data=bundle, headers={"Authorization": f"Bearer {corse}"}
        ) as r:
            assert r.status == 200, await r.text()
        hprim = (DATA / "french_covid.hpr").read_bytes()
        files = f"{http_url}/sidep/api/v1/files?format=auto&name=french_covid.hpr"
        async with client.post(files, data=hprim, headers={"Authorization": f"Bearer {paix}"}) as r:
            body = await r.json()
            assert r.status == 200 and body["accepted"] == 1, body
    rows = {r.sample_id: r for r in await service.results(OPERATOR, CONSOLE)}
    assert set(rows) == {"PRL-2020-0042", "PRL-0042"}
    assert rows["PRL-0042"].lab == "750712184"


def test_ingest_the_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    files = [str(DATA / n) for n in ("french_oru.hl7", "french_covid.hpr", "french_bundle.json")]
    assert main(["sidep", "ingest", *files, *data]) == 0
    assert capsys.readouterr().out == "accepted=3 duplicates=0 rejected=0\n"
    assert main(["sidep", "ingest", *files, *data]) == 0
    assert capsys.readouterr().out == "accepted=0 duplicates=3 rejected=0\n"
    assert main(["sidep", "results", "--json", *data]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {x["sample_id"] for x in lines} == {"SMP-42", "PRL-0042", "PRL-2020-0042"}
    # Céline Dupont, born 1 October 1995, sent by two labs in two formats: one person
    assert main(["sidep", "export", "--pseudonymised", *data]) == 0
    exported = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert len({x["pseudonym"] for x in exported}) == 2
    refused = str(DATA / "python_hl7_batch_adt.hl7")
    assert main(["sidep", "ingest", refused, *data]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "accepted=0 duplicates=0 rejected=2" and "ADT^A04" in out[1]


def test_indicators_from_the_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    files = [str(DATA / n) for n in ("french_oru.hl7", "french_covid.hpr", "french_bundle.json")]
    assert main(["sidep", "ingest", *files, *data]) == 0
    capsys.readouterr()
    out = tmp_path / "out"
    assert main(["sidep", "indicators", "--out", str(out), "--until", "2020-10-07", *data]) == 0
    printed = capsys.readouterr().out
    assert f"{out / 'sp-pos-quot-dep.csv'}: " in printed
    rows = [
        line.split(";")
        for line in (out / "sp-pos-quot-dep.csv").read_text().splitlines()[1:]
        if ";2020-10-01;" in line
    ]
    all_ages = {r[0]: (r[2], r[3]) for r in rows if r[4] == "0"}
    # Céline Dupont, tested twice that day by two labs (2A, then Paris): one person, once
    assert all_ages["2A"] == ("1", "1") and all_ages["2B"] == ("1", "1")
    assert "75" not in all_ages or all_ages["75"] == ("0", "0")
    france = (out / "sp-pos-quot-fra.csv").read_text().splitlines()
    assert any(line.startswith("FR;2020-10-01;2;2;0;") for line in france), france[:3]


def test_indicators_refusals(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = ("--data-dir", str(tmp_path / "data"))
    out = ("--out", str(tmp_path / "out"))
    assert main(["sidep", "indicators", *out, "--tests", str(tmp_path / "none.csv"), *data]) != 0
    assert "no tests file" in capsys.readouterr().err
    assert main(["sidep", "indicators", *out, "--until", "yesterday", *data]) != 0
    assert "--until must be YYYY-MM-DD" in capsys.readouterr().err
