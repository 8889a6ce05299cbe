"""The published rows are kept per event: publishing a second event's files the same day
replaced the first event's rows (the table's key was the day and the dataset only).

Before this revision the service read every published row as the history of the event it
publishes for by default, ``SivicService.covid_event``: the open epidemic event named
"COVID-19", made on first use. The upgrade gives the rows to that event, so that the service
reads them afterwards as it did before; it never gives them to a closed event (which nothing
reads by default) and never drops them. The downgrade stops with ``kit.db.DatabaseError``,
changing nothing, when rows would be lost.

Revision ID: sivic_0003
Revises: sivic_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from kit.db import DatabaseError, UtcDateTime

revision: str = "sivic_0003"
down_revision: str | Sequence[str] | None = "sivic_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
COLUMNS = "day, dataset, body, published_at"

# What SivicService.covid_event looks for, and makes (through SivicStore.create_event) when
# there is none: an open event of this kind and name, opened by the system actor, audited.
COVID_KIND = "epidemic"
COVID_NAME = "COVID-19"
SYSTEM_NAME = "system"
SYSTEM_ROLE = "admin"

events = sa.table(
    "sivic_events",
    sa.column("id", sa.Integer()),
    sa.column("kind", sa.String()),
    sa.column("name", sa.String()),
    sa.column("opened_at", UtcDateTime()),
    sa.column("closed_at", UtcDateTime()),
    sa.column("opened_by", sa.String()),
)
audit = sa.table(
    "kit_audit",
    sa.column("at", UtcDateTime()),
    sa.column("actor", sa.String()),
    sa.column("role", sa.String()),
    sa.column("action", sa.String()),
    sa.column("object_type", sa.String()),
    sa.column("object_id", sa.String()),
    sa.column("detail", sa.String()),
)


def _open_covid_events(connection: sa.Connection) -> list[int]:
    """The ids of the open COVID-19 epidemic events, newest first (covid_event's order)."""
    query = (
        sa.select(events.c.id)
        .where(
            events.c.kind == COVID_KIND,
            events.c.name == COVID_NAME,
            events.c.closed_at.is_(None),
        )
        .order_by(events.c.id.desc())
    )
    return [int(i) for i in connection.execute(query).scalars()]


def _create_covid_event(connection: sa.Connection) -> int:
    """The event covid_event would make, with its audit entry, as SivicStore.create_event
    writes them (the time is the migration's: there is no service clock here)."""
    at = datetime.now(UTC)
    event_id = int(
        connection.execute(
            sa.insert(events)
            .values(kind=COVID_KIND, name=COVID_NAME, opened_at=at, opened_by=SYSTEM_NAME)
            .returning(events.c.id)
        ).scalar_one()
    )
    connection.execute(
        sa.insert(audit).values(
            at=at,
            actor=SYSTEM_NAME,
            role=SYSTEM_ROLE,
            action="create",
            object_type="event",
            object_id=str(event_id),
            detail=COVID_KIND,
        )
    )
    return event_id


def _refuse(why: str) -> DatabaseError:
    return DatabaseError(f"SI-VIC migration sivic_0003 stopped, nothing was changed: {why}")


def upgrade() -> None:
    """Key ``sivic_published`` by event, day and dataset, and give every row already published
    to the event the service reads them for afterwards: the open COVID-19 epidemic event
    ``covid_event`` picks (the newest, should several be open: the one the service has read
    them for until now). With none open (no event at all, or only closed or other ones), that
    event is made as covid_event would make it (kind, name, opener, audit entry). Without
    published rows, no event is looked at or made."""
    connection = op.get_bind()
    count = int(connection.execute(sa.text("SELECT COUNT(*) FROM sivic_published")).scalar_one())
    event: int | None = None
    if count:
        open_ones = _open_covid_events(connection)
        event = open_ones[0] if open_ones else _create_covid_event(connection)
    op.create_table(
        "sivic_published_by_event",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("dataset", sa.String(60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "day", "dataset", name="sivic_published_by_event_pk"),
    )
    if event is not None:
        connection.execute(
            sa.text(
                f"INSERT INTO sivic_published_by_event (event_id, {COLUMNS}) "
                f"SELECT :event, {COLUMNS} FROM sivic_published"
            ),
            {"event": event},
        )
    op.drop_table("sivic_published")
    op.rename_table("sivic_published_by_event", "sivic_published")


def downgrade() -> None:
    """Key ``sivic_published`` by day and dataset again, losslessly or not at all.

    The old table cannot tell events apart: it is only filled when every published row
    belongs to the open COVID-19 epidemic event covid_event picks, the event the upgrade gives
    them to, so that upgrading again restores every row with the same event. Rows of any other
    event (closed, another kind or name, an older open COVID-19 event) would be lost or given
    to another event: then the downgrade refuses (``DatabaseError``) and changes nothing;
    remove or export those rows first if that is what is meant. The COVID-19 event the upgrade may
    have made is kept (patients may have been registered for it since)."""
    connection = op.get_bind()
    holders = sorted(
        int(i)
        for i in connection.execute(
            sa.text("SELECT DISTINCT event_id FROM sivic_published")
        ).scalars()
    )
    if holders:
        open_ones = _open_covid_events(connection)
        if holders != open_ones[:1]:
            expected = (
                f"the open COVID-19 event ({open_ones[0]})"
                if open_ones
                else "an open COVID-19 event"
            )
            raise _refuse(
                f"published rows belong to events {', '.join(map(str, holders))}, and the "
                f"downgrade can keep those of {expected} only: the others would be lost, or "
                "given to another event by the next upgrade"
            )
    op.create_table(
        "sivic_published_by_day",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("dataset", sa.String(60), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
    )
    connection.execute(
        sa.text(
            f"INSERT INTO sivic_published_by_day ({COLUMNS}) SELECT {COLUMNS} FROM sivic_published"
        )
    )
    op.drop_table("sivic_published")
    op.rename_table("sivic_published_by_day", "sivic_published")
