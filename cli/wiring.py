"""How the services meet when they run in one process: the composition root.

Services never import each other; what one needs of another is a small interface it declares
(the ROBERT server's ``server.codegate.CodeGate``), which another service's object happens to
fulfil. In production the interfaces are HTTP clients between processes; here, for
``robert dev`` and for ``robert serve`` on the embedded default, the objects are handed over
directly.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date
from typing import TYPE_CHECKING

from server.codegate import CodeGate, HttpCodeGate
from server.settings import Settings as RobertSettings

if TYPE_CHECKING:  # the services are imported when used: `robert --help` stays quick
    from beds.service import BedService
    from beds.settings import Settings as BedsSettings
    from codes.service import CodeService
    from codes.settings import Settings as CodesSettings
    from contact.service import ContactService
    from contact.settings import Settings as ContactSettings
    from drugs.critical_care import Patients
    from drugs.service import DrugService
    from drugs.settings import Settings as DrugsSettings
    from kit.db import Database
    from kit.events import Fetch
    from samu.service import SamuService
    from samu.settings import Settings as SamuSettings
    from sidep.issuer import IssuedCode as SidepIssuedCode
    from sidep.service import SidepService
    from sidep.settings import Settings as SidepSettings
    from sivic.service import SivicService
    from sivic.settings import Settings as SivicSettings


def codes_settings(robert: RobertSettings) -> CodesSettings:
    """The code service's settings (``CODES_*``), its data directory following the ROBERT
    server's unless ``CODES_DATA_DIR`` says otherwise."""
    from codes.settings import Settings as CodesSettings

    return CodesSettings.beside(robert.data_dir)


def in_process_codes(robert: RobertSettings, clock: Callable[[], float] = time.time) -> CodeService:
    """The code service in this process (not yet opened: the ROBERT application opens it)."""
    from codes import app as codes_app

    return codes_app.new_service(codes_settings(robert), clock)


def code_gate(robert: RobertSettings, clock: Callable[[], float] = time.time) -> CodeGate:
    """How the ROBERT server reaches the code service: over HTTP when ``ROBERT_CODES_URL``
    is set, else in this process."""
    if robert.codes_url:
        return HttpCodeGate(robert.codes_url, robert.codes_api_key)
    return in_process_codes(robert, clock)


class BedsCriticalCare:
    """The drug service's ``CriticalCareSource`` fulfilled by the bed service in this process
    (read with national scope: the allocation covers France)."""

    def __init__(self, beds: BedService) -> None:
        self.beds = beds

    async def patients(self, territory: str) -> list[Patients]:
        from beds.access import NATIONAL as BEDS_NATIONAL
        from beds.access import Access as BedsAccess
        from drugs.critical_care import Patients

        rows = await self.beds.critical_care(BedsAccess(BEDS_NATIONAL, "national"), territory)
        return [Patients(r.finess, r.name, r.departement, r.region, r.covid, r.other) for r in rows]


def in_process_beds(
    robert: RobertSettings, clock: Callable[[], float] = time.time
) -> tuple[BedsSettings, BedService]:
    """The bed service in this process (opened by its application)."""
    from beds import app as beds_app
    from beds.settings import Settings as BedsSettings

    settings = BedsSettings.beside(robert.data_dir)
    return settings, beds_app.new_service(settings, clock)


def in_process_drugs(
    robert: RobertSettings, beds: BedService, clock: Callable[[], float] = time.time
) -> tuple[DrugsSettings, DrugService]:
    """The drug service in this process, reading patients in critical care from ``beds``
    unless ``DRUGS_BEDS_URL`` points elsewhere."""
    from drugs import app as drugs_app
    from drugs.settings import Settings as DrugsSettings

    settings = DrugsSettings.beside(robert.data_dir)
    source = None if settings.beds_url else BedsCriticalCare(beds)
    return settings, drugs_app.new_service(settings, clock, source)


class SidepCodeIssuer:
    """SI-DEP's ``CodeIssuer`` fulfilled by the code service in this process: long codes of
    the organisation ``SIDEP`` (role lab, created on first use)."""

    def __init__(self, codes: CodeService) -> None:
        self.codes = codes

    async def issue_long(self, test_date: date) -> SidepIssuedCode:
        from codes.model import Role
        from kit.http import HttpError
        from protocol.codes import CodeKind
        from sidep.issuer import ORG_NAME, CodeRefused, CodeUnavailable
        from sidep.issuer import IssuedCode as SidepIssuedCode

        try:
            org = await self.codes.ensure_org(ORG_NAME, Role.LAB)
            (issued,) = await self.codes.issue(org, CodeKind.LONG, 1, test_date.isoformat())
        except HttpError as exc:
            if exc.status == 400:
                raise CodeRefused(exc.message) from None
            raise CodeUnavailable(exc.message) from None
        return SidepIssuedCode(issued.record.code, issued.link, issued.record.expires_at)


def served_url(robert: RobertSettings, path: str) -> str:
    """The URL of ``path`` on the server ``robert dev`` runs, as this process reaches it
    (loopback when it listens on every address)."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(robert.host, robert.host)
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{robert.port}{path}"


def in_process_sidep(
    robert: RobertSettings, codes: CodeService, clock: Callable[[], float] = time.time
) -> tuple[SidepSettings, SidepService]:
    """SI-DEP in this process, issuing codes through ``codes`` unless ``SIDEP_CODES_URL``
    points elsewhere (opened by its application). Its notices list the test sites of the
    citizens service mounted beside it (over HTTP, as in production) unless
    ``SIDEP_SITES_URL`` points elsewhere."""
    import dataclasses

    from sidep import app as sidep_app
    from sidep.settings import Settings as SidepSettings

    settings = SidepSettings.beside(robert.data_dir)
    if not settings.sites_url:
        settings = dataclasses.replace(settings, sites_url=served_url(robert, "/citizens"))
    issuer = None if settings.codes_url else SidepCodeIssuer(codes)
    return settings, sidep_app.new_service(settings, clock, issuer)


def in_process_contact(
    robert: RobertSettings, clock: Callable[[], float] = time.time
) -> tuple[ContactSettings, ContactService]:
    """Contact Covid in this process (opened by its application)."""
    from contact import app as contact_app
    from contact.settings import Settings as ContactSettings

    settings = ContactSettings.beside(robert.data_dir)
    return settings, contact_app.new_service(settings, clock)


def contact_feed_source(sidep_db: Database | None) -> Fetch | None:
    """Where Contact Covid reads SI-DEP's positives in this process: SI-DEP's outbox
    (``sidep_db``, the SI-DEP service's database) through ``local_fetcher``; None (no
    in-process feed) when ``CONTACT_SIDEP_URL`` points at SI-DEP's HTTP feed
    (``GET /sidep/api/v1/events``, an ``event-reader`` key) instead. ``robert dev`` passes the
    result to ``contact.app.create_app(..., feed=...)``."""
    if sidep_db is None:
        return None
    from contact.service import TOPICS
    from kit.events import local_fetcher

    return local_fetcher(sidep_db, TOPICS)


class BedsTension:
    """The SAMU board's ``TensionSource`` fulfilled by the bed service in this process (read
    with national scope: the board's users may see the tension of any event's territory)."""

    def __init__(self, beds: BedService) -> None:
        self.beds = beds

    async def tension(self, departement: str | None) -> dict[str, object] | None:
        from beds.access import NATIONAL as BEDS_NATIONAL
        from beds.access import Access as BedsAccess

        territory = f"dep:{departement}" if departement else "fr"
        return await self.beds.tension(BedsAccess(BEDS_NATIONAL, "national"), territory)


def in_process_sivic(
    robert: RobertSettings, clock: Callable[[], float] = time.time
) -> tuple[SivicSettings, SivicService]:
    """SI-VIC in this process (opened by its application)."""
    from sivic import app as sivic_app
    from sivic.settings import Settings as SivicSettings

    settings = SivicSettings.beside(robert.data_dir)
    return settings, sivic_app.new_service(settings, clock)


class SivicCounts:
    """The SAMU board's ``CountsSource`` fulfilled by SI-VIC in this process, read as the
    board's API key would (role board-reader, national scope)."""

    def __init__(self, sivic: SivicService) -> None:
        self.sivic = sivic

    async def counts(self, departement: str | None) -> dict[str, object] | None:
        from sivic.access import BOARD, Access

        return await self.sivic.counts(Access(BOARD, "national"), dep=departement)


def in_process_samu(
    robert: RobertSettings,
    beds: BedService,
    sivic: SivicService,
    clock: Callable[[], float] = time.time,
) -> tuple[SamuSettings, SamuService]:
    """The SAMU board in this process, reading the bed tension from ``beds`` and the counts of
    hospitalised patients from ``sivic``, unless ``SAMU_BEDS_URL`` or ``SAMU_SIVIC_URL`` point
    elsewhere (opened by its application)."""
    from samu import app as samu_app
    from samu.links import SafeCounts, SafeTension
    from samu.settings import Settings as SamuSettings

    settings = SamuSettings.beside(robert.data_dir)
    tension = None if settings.beds_url else SafeTension(BedsTension(beds))
    counts = None if settings.sivic_url else SafeCounts(SivicCounts(sivic))
    return settings, samu_app.new_service(settings, clock, counts=counts, tension=tension)
