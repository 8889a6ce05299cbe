"""Each patient's age class at their current status (today's snapshot reads the current
table, not the whole history), and an index covering the movements' sums.

Revision ID: sivic_0002
Revises: sivic_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import sqlalchemy as sa
from alembic import op

revision: str = "sivic_0002"
down_revision: str | Sequence[str] | None = "sivic_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _age_class(birth: str, on: str) -> str:
    b, d = date.fromisoformat(birth), date.fromisoformat(on)
    years = max(0, d.year - b.year - ((d.month, d.day) < (b.month, b.day)))
    return "90" if years >= 90 else f"{years // 10}9"


def upgrade() -> None:
    op.add_column(
        "sivic_patients",
        sa.Column("age_class", sa.String(2), nullable=False, server_default="0"),
    )
    patients = sa.table(
        "sivic_patients",
        sa.column("id", sa.Integer()),
        sa.column("birth_date", sa.String()),
        sa.column("status_date", sa.String()),
        sa.column("age_class", sa.String()),
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(patients.c.id, patients.c.birth_date, patients.c.status_date)
    ).all()
    for patient_id, birth, on in rows:
        connection.execute(
            sa.update(patients)
            .where(patients.c.id == patient_id)
            .values(age_class=_age_class(birth, on))
        )
    op.create_index(
        "sivic_history_movements",
        "sivic_history",
        ["event_id", "status_date", "dep", "sex", "age_class", "covid",
         "admitted", "to_critical", "to_home", "to_death"],
    )  # fmt: skip
    op.create_index("sivic_patients_current", "sivic_patients", ["event_id", "status", "dep"])


def downgrade() -> None:
    op.drop_index("sivic_patients_current", "sivic_patients")
    op.drop_index("sivic_history_movements", "sivic_history")
    op.drop_column("sivic_patients", "age_class")
