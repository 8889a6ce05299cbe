"""SI-VIC's service on both databases: registration, transfer (one patient, counted once),
discharge and death flowing into the next snapshot, idempotent re-import, refusals, audited
reads, publication with its invariants, the counts of the SAMU board."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from kit.audit import Actor, AuditFilter
from kit.http import BadRequest, Conflict, Forbidden, NotFound
from sivic.access import ADMIN, ARS, BOARD, HOSPITAL, NATIONAL, STAFF, Access
from sivic.intake import HEADER, parse_form
from sivic.model import Outcome, Source
from sivic.opendata import AGE, NEW, published_rows, read_hospital, read_new
from sivic.opendata import HOSPITAL as MAIN
from sivic.service import SivicService
from tests.sivic.conftest import BICETRE, NANTES, PITIE

HEAD = ";".join(HEADER)
ADMIN_ACCESS = Access(ADMIN, "")
NATIONAL_ACCESS = Access(NATIONAL, "national")
CONSOLE = Actor("console", ADMIN)
NIR = "255081416802538"
D1, D2, D3 = date(2020, 4, 1), date(2020, 4, 2), date(2020, 4, 3)


def staff(finess: str) -> tuple[Access, Actor]:
    return Access(STAFF, f"finess:{finess}"), Actor(f"staff-{finess}", STAFF)


async def counts(service: SivicService, day: date, dep: str) -> tuple[int, ...]:
    snapshot = await service.snapshot(day)
    t = snapshot.totals([dep])
    n = snapshot.new_totals([dep])
    return (t.hosp, t.rea, t.rad, t.dc, n.incid_hosp, n.incid_rea, n.incid_rad, n.incid_dc)


async def test_registration_discharge_and_death_flow_into_the_snapshots(
    service: SivicService,
) -> None:
    day1 = "\n".join(
        [
            HEAD,
            f"{PITIE};75;P1;1951-04-03;F;crit;hospitalised;{D1};for",
            f"{PITIE};75;P2;1938-01-20;M;conv;hospitalised;{D1};for",
            f"{PITIE};75;P3;1990-06-01;U;conv;hospitalised;{D1};with",
        ]
    )
    report = await service.import_text(ADMIN_ACCESS, CONSOLE, day1)
    assert (report.created, report.updated, report.unchanged, report.refused) == (3, 0, 0, [])
    again = await service.import_text(ADMIN_ACCESS, CONSOLE, day1)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)  # changes nothing
    day2 = "\n".join(
        [
            HEAD,
            f"{PITIE};75;P1;1951-04-03;F;crit;deceased;{D2};for",
            f"{PITIE};75;P2;1938-01-20;M;conv;home;{D2};for",
        ]
    )
    report = await service.import_text(ADMIN_ACCESS, CONSOLE, day2)
    assert (report.created, report.updated) == (0, 2)
    #                                       hosp rea rad dc  ihosp irea irad idc
    assert await counts(service, D1, "75") == (3, 1, 0, 0, 3, 1, 0, 0)
    assert await counts(service, D2, "75") == (1, 0, 1, 1, 0, 0, 1, 1)
    assert await counts(service, D3, "75") == (1, 0, 1, 1, 0, 0, 0, 0)
    snapshot = await service.snapshot(D2)
    men = next(r for r in snapshot.hospital if r.dep == "75" and r.sexe == 1)
    women = next(r for r in snapshot.hospital if r.dep == "75" and r.sexe == 2)
    assert (men.figures.rad, women.figures.dc, men.figures.hosp + women.figures.hosp) == (1, 1, 0)
    assert await service.store.count_patients((await service.covid_event()).id) == 3
    # Today's snapshot reads the current table: the same as the history's last states.
    event = (await service.covid_event()).id
    from_history = [
        s for s in await service.store.states_on(event, D3) if s.status == "hospitalised"
    ]
    assert sorted(await service.store.states_now(event), key=repr) == sorted(from_history, key=repr)


async def test_a_transfer_keeps_one_patient_counted_once(service: SivicService) -> None:
    pitie_access, pitie_actor = staff(PITIE)
    nantes_access, nantes_actor = staff(NANTES)
    first = f"{HEAD}\n{PITIE};75;{NIR};1955-08-14;M;crit;hospitalised;{D1};for\n"
    await service.import_text(pitie_access, pitie_actor, first)
    # Nantes registers the patient (same INS) before Paris says "transferred".
    arrival = f"{HEAD}\n{NANTES};44;{NIR};1955-08-14;M;crit;hospitalised;{D2};for\n"
    report = await service.import_text(nantes_access, nantes_actor, arrival)
    assert (report.created, report.updated) == (0, 1)
    gone = f"{HEAD}\n{PITIE};75;{NIR};1955-08-14;M;crit;transferred;{D2};for\n"
    report = await service.import_text(pitie_access, pitie_actor, gone)
    assert report.unchanged == 1  # the arrival is newer news
    assert await counts(service, D2, "75") == (0, 0, 0, 0, 0, 0, 0, 0)
    assert await counts(service, D2, "44") == (1, 1, 0, 0, 0, 0, 0, 0)  # not a new admission
    national = (await service.snapshot(D2)).totals()
    assert (national.hosp, national.rea) == (1, 1)
    board = Access(BOARD, "")
    assert [(await service.counts(board, dep=d))["hosp"] for d in ("75", "44")] == [0, 1]
    assert (await service.counts(board, region="52"))["incid_rea"] == 0
    assert await service.store.count_patients((await service.covid_event()).id) == 1


async def test_a_transfer_matched_on_the_normalised_identity(service: SivicService) -> None:
    pitie_access, pitie_actor = staff(PITIE)
    nantes_access, nantes_actor = staff(NANTES)
    base = {"birth_date": "1960-02-29", "sex": "F", "covid": "for", "dep": "75"}
    leaving = parse_form(
        {**base, "finess": PITIE, "unit": "conv", "status": "hospitalised",
         "status_date": str(D1), "last_name": "Dupont-Lefèvre", "first_name": "Élodie"}
    )  # fmt: skip
    created = await service.register(pitie_access, pitie_actor, leaving, Source.FORM)
    assert created.outcome == Outcome.CREATED
    transferred = parse_form(
        {**base, "finess": PITIE, "unit": "conv", "status": "transferred",
         "status_date": str(D2), "last_name": "Dupont-Lefèvre", "first_name": "Élodie"}
    )  # fmt: skip
    assert (
        await service.register(pitie_access, pitie_actor, transferred, Source.FORM)
    ).outcome == (Outcome.UPDATED)
    arriving = parse_form(
        {**base, "dep": "44", "finess": NANTES, "unit": "crit", "status": "hospitalised",
         "status_date": str(D2), "last_name": "DUPONT LEFEVRE", "first_name": "ELODIE"}
    )  # fmt: skip
    moved = await service.register(nantes_access, nantes_actor, arriving, Source.FORM)
    assert (moved.outcome, moved.patient_id) == (Outcome.UPDATED, created.patient_id)
    # Moved from conventional care into critical care: a new rea entry, not a new admission.
    assert await counts(service, D2, "44") == (1, 1, 0, 0, 0, 1, 0, 0)
    assert await counts(service, D2, "75") == (0, 0, 0, 0, 0, 0, 0, 0)
    # Another person with another INS but the same names is not merged.
    other = parse_form(
        {**base, "dep": "44", "finess": NANTES, "unit": "conv", "status": "hospitalised",
         "status_date": str(D2), "last_name": "Dupont Lefevre", "first_name": "Elodie",
         "ins": NIR}
    )  # fmt: skip
    assert (await service.register(nantes_access, nantes_actor, other, Source.FORM)).outcome == (
        Outcome.UPDATED
    )  # the stored patient had no INS: the identity matches, the INS is added
    homonym = parse_form(
        {**base, "dep": "44", "finess": NANTES, "unit": "conv", "status": "hospitalised",
         "status_date": str(D3), "last_name": "Dupont Lefevre", "first_name": "Elodie",
         "ins": "269054958815780"}
    )  # fmt: skip
    assert (await service.register(nantes_access, nantes_actor, homonym, Source.FORM)).outcome == (
        Outcome.CREATED
    )


async def test_refusals(service: SivicService) -> None:
    pitie_access, pitie_actor = staff(PITIE)
    text = "\n".join(
        [
            HEAD,
            f"{PITIE};75;P1;1951-04-03;F;conv;hospitalised;{D2};for",
            f"{BICETRE};94;P2;1951-04-03;F;conv;hospitalised;{D2};for",
        ]
    )
    report = await service.import_text(pitie_access, pitie_actor, text)
    assert report.created == 1
    assert [(e.line, e.reason) for e in report.refused] == [(3, "not an establishment of yours")]
    older = f"{HEAD}\n{PITIE};75;P1;1951-04-03;F;conv;home;{D1};for\n"
    report = await service.import_text(pitie_access, pitie_actor, older)
    assert [(e.line, e.reason) for e in report.refused] == [
        (2, "older than the recorded state (2020-04-02)")
    ]
    registration = parse_form(
        {"finess": BICETRE, "dep": "94", "birth_date": "1951-04-03", "sex": "F", "unit": "conv",
         "status": "hospitalised", "status_date": str(D2), "covid": "for", "patient_ref": "X"}
    )  # fmt: skip
    with pytest.raises(Forbidden):
        await service.register(pitie_access, pitie_actor, registration, Source.API)
    with pytest.raises(NotFound):
        await service.event(999)


async def test_reads_are_audited_and_scoped(service: SivicService) -> None:
    pitie_access, pitie_actor = staff(PITIE)
    await service.import_text(
        pitie_access, pitie_actor, f"{HEAD}\n{PITIE};75;P1;1951-04-03;F;conv;hospitalised;{D2};for"
    )
    (patient,) = await service.patients_at(pitie_access, pitie_actor, PITIE)
    record, history = await service.patient(pitie_access, pitie_actor, patient.id)
    assert (
        record.identity.patient_ref == "P1" and len(history) == 1 and history[0].movement.admitted
    )
    reads = await service.store.audit.query(service.store.db, AuditFilter(action="read"))
    assert [(e.object_type, e.object_id, e.actor) for e in reads] == [
        ("patient", str(patient.id), pitie_actor.name),
        ("patient_list", f"{patient.event_id}:{PITIE}", pitie_actor.name),
    ]
    bicetre_access, bicetre_actor = staff(BICETRE)
    with pytest.raises(NotFound):
        await service.patient(bicetre_access, bicetre_actor, patient.id)
    with pytest.raises(Forbidden):
        await service.patients_at(bicetre_access, bicetre_actor, PITIE)
    ars_idf = Access(ARS, "reg:11")
    assert len(await service.patients_at(ars_idf, Actor("ars", ARS), PITIE)) == 1
    with pytest.raises(NotFound):
        await service.patient(Access(ARS, "reg:52"), Actor("ars52", ARS), patient.id)
    with pytest.raises(NotFound):
        await service.patient(Access(BOARD, ""), Actor("board", BOARD), patient.id)
    with pytest.raises(NotFound):
        await service.patient(
            Access(HOSPITAL, f"finess:{NANTES}"), Actor("k", HOSPITAL), patient.id
        )


async def test_publication_and_its_invariants(service: SivicService, tmp_path: Path) -> None:
    await service.import_text(
        ADMIN_ACCESS,
        CONSOLE,
        "\n".join(
            [
                HEAD,
                f"{PITIE};75;P1;1951-04-03;F;crit;hospitalised;{D1};for",
                f"{NANTES};44;N1;1938-01-20;M;conv;hospitalised;{D1};for",
            ]
        ),
    )
    first = await service.publish(D1, tmp_path)
    assert first.problems == [] and len(first.files) == 3
    await service.import_text(
        ADMIN_ACCESS, CONSOLE, f"{HEAD}\n{NANTES};44;N1;1938-01-20;M;conv;home;{D2};for\n"
    )
    second = await service.publish(D2, tmp_path)
    assert second.problems == []
    main = (tmp_path / f"{MAIN}-2020-04-02-19h00.csv").read_text()
    rows = read_hospital(main)
    assert {r.jour for r in rows} == {D1, D2} and len(rows) == 2 * 3 * 101
    nantes = [
        (r.jour, r.figures.hosp, r.figures.rad) for r in rows if r.dep == "44" and r.sexe == 0
    ]
    assert nantes == [(D1, 1, 0), (D2, 0, 1)]
    new = read_new((tmp_path / f"{NEW}-2020-04-02-19h00.csv").read_text())
    assert [(n.jour, n.incid_hosp, n.incid_rad) for n in new if n.dep == "44"] == [
        (D1, 1, 0),
        (D2, 0, 1),
    ]
    age = (tmp_path / f"{AGE}-2020-04-02-19h00.csv").read_text().splitlines()
    assert "52;0;2020-04-02;0;0;0;0;0;1;0" in age and "52;89;2020-04-02;0;0;0;0;0;1;0" in age
    # A published day with more returns home than the history holds: the next day's
    # cumulative count would fall, so nothing is published.
    body = (
        (await service.snapshot(D2))
        .body(MAIN)
        .replace("44;0;2020-04-02;0;0;0;0;0;1;0", "44;0;2020-04-02;0;0;0;0;0;5;0")
    )
    covid = (await service.covid_event()).id
    await service.store.keep_published(covid, D2, {MAIN: body}, CONSOLE, service.now())
    third = await service.publish(D3, tmp_path / "d3")
    assert third.problems == ["44 sexe 0: rad fell from 5 on 2020-04-02 to 1 on 2020-04-03"]
    assert third.files == [] and not (tmp_path / "d3").exists()


async def test_counts_for_the_samu_board(service: SivicService) -> None:
    await service.import_text(
        ADMIN_ACCESS,
        CONSOLE,
        "\n".join(
            [
                HEAD,
                f"{PITIE};75;P1;1951-04-03;F;crit;hospitalised;{D3};for",
                f"{BICETRE};94;B1;1951-04-03;M;conv;hospitalised;{D3};with",
                f"{NANTES};44;N1;1938-01-20;M;ssr_usld;hospitalised;{D2};for",
            ]
        ),
    )
    board = Access(BOARD, "")
    paris = await service.counts(board, dep="75")
    assert {k: paris[k] for k in ("dep", "date", "hosp", "rea", "rad", "dc", "incid_hosp")} == {
        "dep": "75", "date": "2020-04-03", "hosp": 1, "rea": 1, "rad": 0, "dc": 0, "incid_hosp": 1,
    }  # fmt: skip
    idf = await service.counts(board, region="11")
    assert (idf["hosp"], idf["rea"], idf["conv"]) == (2, 1, 1)
    france = await service.counts(NATIONAL_ACCESS)
    assert (france["hosp"], france["ssr_usld"], france["incid_hosp"]) == (3, 1, 2)
    regional = Access(BOARD, "reg:11")
    assert (await service.counts(regional, dep="94"))["hosp"] == 1
    with pytest.raises(Forbidden):
        await service.counts(regional, dep="44")
    with pytest.raises(Forbidden):
        await service.counts(staff(PITIE)[0], dep="75")
    with pytest.raises(BadRequest):
        await service.counts(board, dep="99")


async def test_the_daily_job_publishes_today(service: SivicService, tmp_path: Path) -> None:
    from sivic.app import _publish

    await service.import_text(
        ADMIN_ACCESS, CONSOLE, f"{HEAD}\n{PITIE};75;P1;1951-04-03;F;crit;hospitalised;{D3};for\n"
    )
    await _publish(service, tmp_path)()
    rows = read_hospital((tmp_path / f"{MAIN}-{D3}-19h00.csv").read_text())
    assert [(r.figures.hosp, r.figures.rea) for r in rows if (r.dep, r.sexe) == ("75", 2)] == [
        (1, 1)
    ]


async def test_events_open_and_close(service: SivicService) -> None:
    with pytest.raises(Forbidden):
        await service.create_event(staff(PITIE)[0], staff(PITIE)[1], "attack", "Nice")
    attack = await service.create_event(NATIONAL_ACCESS, CONSOLE, "attack", "Promenade")
    line = f"{HEAD}\n{PITIE};75;V1;1980-01-01;M;crit;hospitalised;{D3};with\n"
    report = await service.import_text(ADMIN_ACCESS, CONSOLE, line, attack.id)
    assert report.created == 1
    assert (await service.snapshot(D3)).totals().hosp == 0  # the COVID files count COVID only
    assert (await service.snapshot(D3, attack.id)).totals().hosp == 1
    closed = await service.close_event(NATIONAL_ACCESS, CONSOLE, attack.id)
    assert closed.closed_at is not None
    with pytest.raises(Conflict):
        await service.close_event(NATIONAL_ACCESS, CONSOLE, attack.id)
    with pytest.raises(Conflict):
        await service.import_text(ADMIN_ACCESS, CONSOLE, line, attack.id)
    with pytest.raises(BadRequest):
        await service.create_event(NATIONAL_ACCESS, CONSOLE, "flood", "Somme")
    kinds = [(e.kind.value, e.closed_at is None) for e in await service.events()]
    assert kinds == [("epidemic", True), ("attack", False)]  # newest first


async def test_same_day_corrections_replace_the_days_movements(service: SivicService) -> None:
    """crit, conv, crit, conv, crit on one day is one patient admitted once, entering critical
    care once; a "deceased" corrected the same day is no death."""

    async def line(finess: str, dep: str, ref: str, unit: str, status: str, day: date) -> None:
        text = f"{HEAD}\n{finess};{dep};{ref};1951-04-03;F;{unit};{status};{day};for"
        report = await service.import_text(ADMIN_ACCESS, CONSOLE, text)
        assert report.refused == [] and report.created + report.updated == 1

    for unit in ("crit", "conv", "crit", "conv", "crit"):
        await line(PITIE, "75", "P1", unit, "hospitalised", D2)
    #                                       hosp rea rad dc  ihosp irea irad idc
    assert await counts(service, D2, "75") == (1, 1, 0, 0, 1, 1, 0, 0)
    # The same flip-flop today (the current table's path), over a state of the day before.
    await line(PITIE, "75", "P2", "crit", "hospitalised", D2)
    for unit in ("conv", "crit", "conv", "crit", "conv"):
        await line(PITIE, "75", "P2", unit, "hospitalised", D3)
    assert await counts(service, D3, "75") == (2, 1, 0, 0, 0, 0, 0, 0)
    # A mistaken death, corrected the same day: no death.
    await line(PITIE, "75", "P3", "conv", "hospitalised", D2)
    await line(PITIE, "75", "P3", "conv", "deceased", D3)
    assert (await counts(service, D3, "75"))[3] == 1
    await line(PITIE, "75", "P3", "conv", "hospitalised", D3)
    assert await counts(service, D3, "75") == (3, 1, 0, 0, 0, 0, 0, 0)
    snapshot = await service.snapshot(D3)
    assert snapshot.totals(["75"]).dc == 0
    # The history keeps every change; the corrected one counts nothing any more.
    found = await service.store.patients_at((await service.covid_event()).id, PITIE)
    p3 = next(p for p in found if p.identity.patient_ref == "P3")
    _, changes = await service.patient(ADMIN_ACCESS, CONSOLE, p3.id)
    assert [(c.episode.status.value, c.movement.labels) for c in changes] == [
        ("hospitalised", ["new hospitalisation"]),
        ("deceased", []),
        ("hospitalised", []),
    ]
    # Admitted and sent home the same day (a short stay): admitted, and returned home.
    await line(BICETRE, "94", "B1", "conv", "hospitalised", D2)
    await line(BICETRE, "94", "B1", "conv", "home", D2)
    assert await counts(service, D2, "94") == (0, 0, 1, 0, 1, 0, 1, 0)
    # Admitted in critical care and transferred out the same day: admitted once, entered
    # critical care once; arriving elsewhere the next day is neither.
    await line(PITIE, "75", "T1", "crit", "hospitalised", D2)
    await line(PITIE, "75", "T1", "crit", "transferred", D2)
    assert (await counts(service, D2, "75"))[4:6] == (4, 3)  # with P1, P2 (crit), P3
    # Deceased again, the same day: the death counts once.
    await line(PITIE, "75", "P3", "conv", "deceased", D3)
    assert (await counts(service, D3, "75"))[3] == 1


async def test_same_day_corrections_within_one_file(service: SivicService) -> None:
    """A patient admitted in Paris and, the same day, registered in Nantes (same INS) in one
    file: one admission and one entry into critical care (they were in Paris' critical care
    that day), counted where they lie at the end of the day."""
    text = "\n".join(
        [
            HEAD,
            f"{PITIE};75;{NIR};1955-08-14;M;crit;hospitalised;{D2};for",
            f"{NANTES};44;{NIR};1955-08-14;M;conv;hospitalised;{D2};for",
        ]
    )
    report = await service.import_text(ADMIN_ACCESS, CONSOLE, text)
    assert (report.created, report.updated, report.refused) == (1, 1, [])
    assert await counts(service, D2, "75") == (0, 0, 0, 0, 0, 0, 0, 0)
    assert await counts(service, D2, "44") == (1, 0, 0, 0, 1, 1, 0, 0)


async def test_two_events_publish_the_same_day_apart(service: SivicService, tmp_path: Path) -> None:
    """Publishing a second event's files the same day kept only the last event's rows."""
    await service.import_text(
        ADMIN_ACCESS, CONSOLE, f"{HEAD}\n{PITIE};75;P1;1951-04-03;F;crit;hospitalised;{D2};for"
    )
    attack = await service.create_event(ADMIN_ACCESS, CONSOLE, "attack", "Attentat")
    await service.import_text(
        ADMIN_ACCESS,
        CONSOLE,
        f"{HEAD}\n{NANTES};44;N1;1980-01-01;M;conv;hospitalised;{D2};for\n"
        f"{NANTES};44;N2;1981-01-01;M;conv;hospitalised;{D2};for",
        attack.id,
    )
    covid = (await service.covid_event()).id
    assert not (await service.publish(D2, tmp_path / "covid")).problems
    assert not (await service.publish(D2, tmp_path / "attack", event_id=attack.id)).problems

    async def hosp(event_id: int, dep: str) -> int:
        rows = published_rows(await service.store.published_bodies(event_id, MAIN))
        (row,) = [r for r in rows if r.dep == dep and r.sexe == 0 and r.jour == D2]
        return row.figures.hosp

    assert (await hosp(covid, "75"), await hosp(covid, "44")) == (1, 0)
    assert (await hosp(attack.id, "75"), await hosp(attack.id, "44")) == (0, 2)
