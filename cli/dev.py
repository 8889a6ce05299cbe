"""``robert dev``: every service in one process, on the embedded stores, for development.

Production runs each service as its own process (``robert serve``, ``robert worker``...); this
mounts them all in one aiohttp application on one port so that ``make run`` gives a newcomer
the whole system with nothing to install first. ``GET /`` links every service.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cli import wiring
from kit.cli import Listener, serve_app, setup_logging
from server import commands as robert_commands
from server.processes import run_event_loop
from server.settings import Settings as RobertSettings

log = logging.getLogger("robert.dev")

LINKS = (
    ("/", "index of the services"),
    ("/api/v6/clock", "ROBERT API (v6)"),
    ("/codes/", "submission codes: labs, doctors, administrators"),
    ("/beds/", "critical-care beds (ROR)"),
    ("/contact/", "Contact Covid: case investigations"),
    ("/drugs/", "hospital drug stocks (MaPUI)"),
    ("/sidep/", "SI-DEP: lab results (HL7, FHIR, HPRIM, CSV), positives"),
    ("/samu/", "SAMU board (SI-SAMU): events, live log, transfers"),
    ("/citizens/", "services for citizens: advice, test sites, e-health directory"),
    ("/sivic/", "SI-VIC: hospitalised victims and COVID inpatients"),
    ("/openapi.json", "ROBERT API document"),
    ("/health", "health check"),
    ("/metrics", "metrics"),
)


def build_app(settings: RobertSettings, clock: Callable[[], float] = time.time) -> web.Application:
    """The ROBERT server with every other service mounted beside it, sharing one port."""
    # The services are imported here, not at the top: `robert --help` stays quick.
    from beds import app as beds_app
    from citizens import app as citizens_app
    from citizens.settings import Settings as CitizensSettings
    from codes import app as codes_app
    from contact import app as contact_app
    from drugs import app as drugs_app
    from samu import app as samu_app
    from server.api.routes import INDEX_LINKS
    from server.app import create_app
    from sidep import app as sidep_app
    from sivic import app as sivic_app

    codes = wiring.in_process_codes(settings, clock)
    beds_settings, beds = wiring.in_process_beds(settings, clock)
    drugs_settings, drugs = wiring.in_process_drugs(settings, beds, clock)
    sidep_settings, sidep = wiring.in_process_sidep(settings, codes, clock)
    contact_settings, contact = wiring.in_process_contact(settings, clock)
    # Contact Covid reads SI-DEP's positives from its outbox in this process (or over HTTP when
    # CONTACT_SIDEP_URL says so).
    sidep_outbox = None if contact_settings.sidep_url else sidep.store.db
    contact_feed = wiring.contact_feed_source(sidep_outbox)
    sivic_settings, sivic = wiring.in_process_sivic(settings, clock)
    samu_settings, samu = wiring.in_process_samu(settings, beds, sivic, clock)

    def mount(app: web.Application) -> None:
        codes_app.mount(app, codes_app.create_app(wiring.codes_settings(settings), codes))
        beds_app.mount(app, beds_app.create_app(beds_settings, beds, clock=clock, manage=True))
        drugs_app.mount(app, drugs_app.create_app(drugs_settings, drugs, clock=clock, manage=True))
        sidep_app.mount(app, sidep_app.create_app(sidep_settings, sidep, clock=clock, manage=True))
        citizens_app.mount(app, citizens_app.create_app(CitizensSettings.beside(settings.data_dir)))
        sivic_app.mount(app, sivic_app.create_app(sivic_settings, sivic, clock=clock, manage=True))
        app[INDEX_LINKS].append(
            (
                "/sivic/",
                "SI-VIC",
                "hospitalised victims and COVID inpatients, the daily open-data files "
                "(robert sivic import FILE; robert sivic snapshot --out DIR; "
                "robert sivic users add ...)",
            )
        )
        contact_app.mount(
            app,
            contact_app.create_app(
                contact_settings, contact, clock=clock, manage=True, feed=contact_feed
            ),
        )
        app[INDEX_LINKS].append(
            (
                "/contact/",
                "Contact Covid",
                "case investigations: doctors, health-insurance agents, ARS, labs and "
                "pharmacies (robert contact users add NAME --name 'Full Name' --role doctor)",
            )
        )
        samu_app.mount(app, samu_app.create_app(samu_settings, samu, clock=clock, manage=True))
        app[INDEX_LINKS].append(
            (
                "/samu/",
                "SAMU board (SI-SAMU)",
                "events on a map, scoped messages live, the append-only log, transfers "
                "(robert samu users add NAME --role regulator --scope samu:75)",
            )
        )
        app[INDEX_LINKS].append(
            (
                "/citizens/",
                "Services for citizens",
                "Mes Conseils Covid, the map of test sites, the directory of e-health tools "
                "(moderators: robert citizens users add NAME --name 'Full Name' --role moderator)",
            )
        )
        app[INDEX_LINKS].append(
            (
                "/beds/",
                "Critical-care beds (ROR)",
                "live capacity, tension dashboards, the "
                "nearest free bed (robert beds load; robert beds users add ...)",
            )
        )
        app[INDEX_LINKS].append(
            (
                "/sidep/",
                "SI-DEP (lab results)",
                "labs' results over HTTP (and MLLP with robert sidep serve), positives turned "
                "into codes, notices and events (robert sidep users add ...)",
            )
        )
        app[INDEX_LINKS].append(
            (
                "/drugs/",
                "Hospital drug stocks (MaPUI)",
                "stocks, days of cover, allocation, redeployment (robert drugs users add ...)",
            )
        )
        app[INDEX_LINKS].append(
            (
                "/codes/",
                "Submission codes",
                "the pages of labs, doctors and administrators (sign in with two factors; "
                "first create an organisation and a user: robert codes orgs add, "
                "robert codes users add)",
            )
        )

    return create_app(settings, codes, clock=clock, mount=mount)


def cmd_dev(args: argparse.Namespace) -> int:
    """Serve every service in this process until stopped."""
    settings = robert_commands.settings_of(args)
    setup_logging(settings.log_level)
    log.info("ROBERT settings: %s", settings.describe())
    robert_commands.prepare(settings)
    run_event_loop(robert_commands.check_store(settings))

    async def serve() -> None:
        app = build_app(settings)
        await serve_app(app, Listener(settings.host, settings.port, LINKS), "robert dev")

    run_event_loop(serve())
    return 0


def add_subcommands(subparsers: Any) -> None:
    """Add ``dev`` to the ``robert`` command."""
    dev = robert_commands.with_settings(
        subparsers.add_parser(
            "dev",
            help="run every service in one process (what 'make run' starts)",
            description="Run the ROBERT server and every other service in one process on the "
            "embedded stores (SQLite files under --data-dir), for development and trials. "
            "Production runs each service alone: 'robert serve', 'robert worker', ...",
        )
    )
    dev.set_defaults(func=cmd_dev)
