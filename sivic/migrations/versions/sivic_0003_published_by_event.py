"""The published rows are kept per event: publishing a second event's files the same day
replaced the first event's rows (the table's key was the day and the dataset only).

Revision ID: sivic_0003
Revises: sivic_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sivic_0003"
down_revision: str | Sequence[str] | None = "sivic_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
COLUMNS = "day, dataset, body, published_at"


def preferred(event: str) -> str:
    """An ORDER BY putting first the event SivicService.covid_event publishes for: a COVID-19
    epidemic, open ones first, the newest first (then any event, by the same order)."""
    return (
        f"CASE WHEN {event}.kind = 'epidemic' AND {event}.name = 'COVID-19' THEN 0 ELSE 1 END, "
        f"CASE WHEN {event}.closed_at IS NULL THEN 0 ELSE 1 END, {event}.id DESC"
    )


def upgrade() -> None:
    op.create_table(
        "sivic_published_by_event",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("dataset", sa.String(60), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("event_id", "day", "dataset", name="sivic_published_by_event_pk"),
    )
    # What was published before is the COVID-19 event's (the only one that publishes by
    # default: the daily job and the command's default), the one covid_event picks.
    connection = op.get_bind()
    event = connection.execute(
        sa.text(f"SELECT id FROM sivic_events e ORDER BY {preferred('e')} LIMIT 1")
    ).scalar()
    if event is not None:
        connection.execute(
            sa.text(
                f"INSERT INTO sivic_published_by_event (event_id, {COLUMNS}) "
                f"SELECT :event, {COLUMNS} FROM sivic_published"
            ),
            {"event": int(event)},
        )
    op.drop_table("sivic_published")
    op.rename_table("sivic_published_by_event", "sivic_published")


def downgrade() -> None:
    op.create_table(
        "sivic_published_by_day",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("dataset", sa.String(60), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
    )
    # One row a day and dataset: the one of the event the upgrade would give them to.
    op.get_bind().execute(
        sa.text(
            f"INSERT INTO sivic_published_by_day ({COLUMNS}) "
            f"SELECT {COLUMNS} FROM sivic_published p "
            "WHERE p.event_id = (SELECT q.event_id FROM sivic_published q "
            "JOIN sivic_events e ON e.id = q.event_id "
            f"WHERE q.day = p.day AND q.dataset = p.dataset ORDER BY {preferred('e')} LIMIT 1)"
        )
    )
    op.drop_table("sivic_published")
    op.rename_table("sivic_published_by_day", "sivic_published")
