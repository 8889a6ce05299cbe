"""The bed service's tables: establishments, units, their current counts, every update, and
the daily figures per département.

Revision ID: beds_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "beds_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
COUNTS = ("installed", "surge", "occupied", "available", "covid")


def _counts() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS]


def upgrade() -> None:
    op.create_table(
        "beds_establishments",
        sa.Column("finess", sa.String(9), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("commune", sa.String(100), nullable=False),
        sa.Column("postcode", sa.String(5), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("region", sa.String(2), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
    )
    op.create_index("beds_establishments_by_dep", "beds_establishments", ["departement"])
    op.create_index("beds_establishments_by_postcode", "beds_establishments", ["postcode"])
    op.create_table(
        "beds_units",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "finess", sa.String(9), sa.ForeignKey("beds_establishments.finess"), nullable=False
        ),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(3), nullable=False),
        sa.Column("initial", sa.Integer(), nullable=False),
        sa.UniqueConstraint("finess", "code", name="beds_units_code"),
        sa.CheckConstraint("kind IN ('rea', 'si', 'sc')", name="beds_units_kind"),
    )
    op.create_table(
        "beds_current",
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("beds_units.id"), primary_key=True),
        *_counts(),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
    )
    op.create_table(
        "beds_updates",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("unit_id", sa.Integer(), sa.ForeignKey("beds_units.id"), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        *_counts(),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
    )
    op.create_index("beds_updates_by_unit", "beds_updates", ["unit_id", "at"])
    op.create_table(
        "beds_daily",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("departement", sa.String(3), primary_key=True),
        sa.Column("covid_critical", sa.Integer(), nullable=False),
        sa.Column("initial_capacity", sa.Integer(), nullable=False),
        sa.Column("occupied", sa.Integer(), nullable=False),
        sa.Column("available", sa.Integer(), nullable=False),
        sa.Column("installed", sa.Integer(), nullable=False),
        sa.Column("surge", sa.Integer(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("stale_units", sa.Integer(), nullable=False),
        sa.Column("taken_at", WHEN, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("beds_daily")
    op.drop_table("beds_updates")
    op.drop_table("beds_current")
    op.drop_table("beds_units")
    op.drop_table("beds_establishments")
