"""SI-DEP's tables: persons (identity and pseudonym), results unique on (lab, sample id,
LOINC), the history of corrected results, and the result notices of positives.

Revision ID: sidep_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sidep_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "sidep_persons",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("pseudonym", sa.String(64), nullable=False, unique=True),
        sa.Column("nir", sa.String(15), nullable=True),
        sa.Column("nir_valid", sa.Boolean(), nullable=True),
        sa.Column("last_name", sa.String(100), nullable=True),
        sa.Column("first_name", sa.String(100), nullable=True),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("postcode", sa.String(10), nullable=True),
        sa.Column("phone", sa.String(30), nullable=True),
        sa.Column("email", sa.String(200), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("purged_at", WHEN, nullable=True),
    )
    op.create_index("sidep_persons_by_nir", "sidep_persons", ["nir"])
    op.create_table(
        "sidep_results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lab", sa.String(9), nullable=False),
        sa.Column("sample_id", sa.String(64), nullable=False),
        sa.Column("loinc", sa.String(16), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("result", sa.String(1), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("sampled_at", WHEN, nullable=False),
        sa.Column("validated_at", WHEN, nullable=True),
        sa.Column("dep", sa.String(3), nullable=True),
        sa.Column("age", sa.Integer(), nullable=True),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("sidep_persons.id"), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("prescriber_rpps", sa.String(11), nullable=True),
        sa.Column("raw_ref", sa.String(200), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.UniqueConstraint("lab", "sample_id", "loinc", name="sidep_results_key"),
        sa.CheckConstraint("result IN ('P', 'N', 'I', 'X')", name="sidep_results_result"),
    )
    op.create_index("sidep_results_by_sampled", "sidep_results", ["sampled_at"])
    op.create_index("sidep_results_by_person", "sidep_results", ["person_id"])
    op.create_table(
        "sidep_result_history",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("sidep_results.id"), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("result", sa.String(1), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("sampled_at", WHEN, nullable=False),
        sa.Column("validated_at", WHEN, nullable=True),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("replaced_at", WHEN, nullable=False),
    )
    op.create_index("sidep_history_by_result", "sidep_result_history", ["result_id"])
    op.create_table(
        "sidep_notices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("result_id", sa.Integer(), sa.ForeignKey("sidep_results.id"), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("code_expires_at", WHEN, nullable=True),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("error", sa.String(100), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("done_at", WHEN, nullable=True),
    )
    op.create_index("sidep_notices_by_state", "sidep_notices", ["state"])


def downgrade() -> None:
    op.drop_table("sidep_notices")
    op.drop_table("sidep_result_history")
    op.drop_table("sidep_results")
    op.drop_table("sidep_persons")
