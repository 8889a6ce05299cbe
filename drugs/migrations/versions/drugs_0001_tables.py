"""The drug service's tables: establishments, stock reports (history), the latest stock of
each drug per establishment, and the allocations made.

Revision ID: drugs_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "drugs_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "drugs_establishments",
        sa.Column("finess", sa.String(9), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("lat", sa.Float(), nullable=True),
        sa.Column("lon", sa.Float(), nullable=True),
    )
    op.create_table(
        "drugs_reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "finess", sa.String(9), sa.ForeignKey("drugs_establishments.finess"), nullable=False
        ),
        sa.Column("drug", sa.String(32), nullable=False),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("daily_use", sa.Float(), nullable=False),
        sa.Column("reported_at", WHEN, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index("drugs_reports_by_finess", "drugs_reports", ["finess", "drug", "reported_at"])
    op.create_table(
        "drugs_stock",
        sa.Column(
            "finess", sa.String(9), sa.ForeignKey("drugs_establishments.finess"), primary_key=True
        ),
        sa.Column("drug", sa.String(32), primary_key=True),
        sa.Column("on_hand", sa.Integer(), nullable=False),
        sa.Column("daily_use", sa.Float(), nullable=False),
        sa.Column("reported_at", WHEN, nullable=False),
    )
    op.create_table(
        "drugs_allocations",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("drug", sa.String(32), nullable=False),
        sa.Column("quota", sa.Integer(), nullable=False),
        sa.Column("formula", sa.String(32), nullable=False),
        sa.Column("made_at", WHEN, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drugs_allocations")
    op.drop_table("drugs_stock")
    op.drop_table("drugs_reports")
    op.drop_table("drugs_establishments")
