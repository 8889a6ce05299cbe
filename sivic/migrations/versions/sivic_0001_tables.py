"""SI-VIC's tables: events, patients, their match keys, the history of their episodes, and the
rows published each day.

Revision ID: sivic_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sivic_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def _episode() -> list[sa.Column[str]]:
    return [
        sa.Column("finess", sa.String(9), nullable=False),
        sa.Column("dep", sa.String(3), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "sivic_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("opened_by", sa.String(100), nullable=False),
        sa.CheckConstraint(
            "kind IN ('attack', 'health_situation', 'epidemic')", name="sivic_events_kind"
        ),
    )
    op.create_table(
        "sivic_patients",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
        *_episode(),
        sa.Column("ins", sa.String(15), nullable=True),
        sa.Column("patient_ref", sa.String(64), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("birth_date", sa.String(10), nullable=False),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("status_date", sa.String(10), nullable=False),
        sa.Column("covid", sa.String(4), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("sivic_patients_at", "sivic_patients", ["event_id", "finess", "status"])
    op.create_table(
        "sivic_keys",
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), primary_key=True),
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("sivic_patients.id"), nullable=False),
    )
    op.create_table(
        "sivic_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("patient_id", sa.Integer(), sa.ForeignKey("sivic_patients.id"), nullable=False),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("sivic_events.id"), nullable=False),
        *_episode(),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("age_class", sa.String(2), nullable=False),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("status_date", sa.String(10), nullable=False),
        sa.Column("covid", sa.String(4), nullable=False),
        sa.Column("admitted", sa.SmallInteger(), nullable=False),
        sa.Column("to_critical", sa.SmallInteger(), nullable=False),
        sa.Column("to_home", sa.SmallInteger(), nullable=False),
        sa.Column("to_death", sa.SmallInteger(), nullable=False),
        sa.Column("recorded_at", WHEN, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index("sivic_history_by_day", "sivic_history", ["event_id", "status_date"])
    op.create_index("sivic_history_by_patient", "sivic_history", ["patient_id", "id"])
    op.create_table(
        "sivic_published",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("dataset", sa.String(60), primary_key=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("published_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sivic_published")
    op.drop_table("sivic_history")
    op.drop_table("sivic_keys")
    op.drop_table("sivic_patients")
    op.drop_table("sivic_events")
