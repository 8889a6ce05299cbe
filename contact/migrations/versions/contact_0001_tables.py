"""Contact Covid's tables: persons, cases, settings, contacts, calls, prescriptions, and the
SI-DEP positives waiting for a case; a trigram index for name search on PostgreSQL.

Revision ID: contact_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contact_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contact_persons",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("nir", sa.String(15), nullable=True, unique=True),
        sa.Column("identity_key", sa.String(400), nullable=True, index=True),
        sa.Column("last_name", sa.String(150), nullable=False),
        sa.Column("first_name", sa.String(150), nullable=False),
        sa.Column("birth_date", sa.Date(), nullable=True),
        sa.Column("sex", sa.String(1), nullable=False),
        sa.Column("phone", sa.String(20), nullable=True, index=True),
        sa.Column("email", sa.String(254), nullable=True),
        sa.Column("address", sa.String(300), nullable=False),
        sa.Column("postcode", sa.String(5), nullable=False),
        sa.Column("department", sa.String(3), nullable=False),
        sa.Column("search_name", sa.String(300), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=True),
        sa.Column("collected_at", WHEN, nullable=False, index=True),
        sa.Column("purged_at", WHEN, nullable=True),
        sa.CheckConstraint("sex IN ('M', 'F', 'U')", name="contact_persons_sex"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(
            "CREATE INDEX contact_persons_name_trgm ON contact_persons "
            "USING gin (search_name gin_trgm_ops)"
        )
    else:
        op.create_index("contact_persons_name", "contact_persons", ["search_name"])
    op.create_table(
        "contact_cases",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
        sa.Column("opened_by", sa.String(10), nullable=False),
        sa.Column("doctor", sa.String(100), nullable=True, index=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("diagnosis_date", sa.Date(), nullable=False),
        sa.Column("onset_date", sa.Date(), nullable=True),
        sa.Column("sampled_date", sa.Date(), nullable=True),
        sa.Column("consent_disclose", sa.Boolean(), nullable=False),
        sa.Column("department", sa.String(3), nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.Column("sla_due_at", WHEN, nullable=False),
        sa.Column("source_result", sa.String(200), nullable=True),
        sa.Column("result_withdrawn", sa.Boolean(), nullable=False),
        sa.CheckConstraint("level IN (1, 2, 3)", name="contact_cases_level"),
        sa.CheckConstraint(
            "status IN ('initialised', 'validated', 'closed')", name="contact_cases_status"
        ),
    )
    op.create_index("contact_cases_person", "contact_cases", ["person_id"])
    op.create_index("contact_cases_queue", "contact_cases", ["level", "status", "sla_due_at"])
    op.create_table(
        "contact_exposures",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("place", sa.String(200), nullable=False),
        sa.Column("setting", sa.String(250), nullable=False, index=True),
        sa.Column("day", sa.Date(), nullable=False),
    )
    op.create_table(
        "contact_links",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("relation", sa.String(50), nullable=False),
        sa.Column("household", sa.Boolean(), nullable=False),
        sa.Column("last_contact", sa.Date(), nullable=False),
        sa.Column("isolation_until", sa.Date(), nullable=False),
        sa.Column("test_on", sa.Date(), nullable=False),
        sa.Column("doctor_will_call", sa.Boolean(), nullable=False),
        sa.Column("notified_at", WHEN, nullable=True),
        sa.Column("channel", sa.String(10), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.UniqueConstraint("case_id", "person_id", name="contact_links_once"),
    )
    op.create_index("contact_links_person", "contact_links", ["person_id"])
    op.create_table(
        "contact_calls",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("link_id", sa.Integer(), sa.ForeignKey("contact_links.id"), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
    )
    op.create_table(
        "contact_prescriptions",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=False),
        sa.Column("link_id", sa.Integer(), sa.ForeignKey("contact_links.id"), nullable=True),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("contact_persons.id"), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("code", sa.String(11), nullable=False, unique=True),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("consumed_at", WHEN, nullable=True),
        sa.Column("consumed_by", sa.String(120), nullable=True),
    )
    op.create_index("contact_prescriptions_case", "contact_prescriptions", ["case_id"])
    op.create_table(
        "contact_pending",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("lab", sa.String(20), nullable=False),
        sa.Column("result_id", sa.String(100), nullable=False),
        sa.Column("sampled_at", WHEN, nullable=False),
        sa.Column("department", sa.String(3), nullable=False),
        sa.Column("pseudonym", sa.String(64), nullable=False),
        sa.Column("patient", sa.JSON(), nullable=True),
        sa.Column("received_at", WHEN, nullable=False),
        sa.Column("due_at", WHEN, nullable=False, index=True),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("contact_cases.id"), nullable=True),
        sa.UniqueConstraint("lab", "result_id", name="contact_pending_once"),
    )


def downgrade() -> None:
    for table in (
        "contact_pending",
        "contact_prescriptions",
        "contact_calls",
        "contact_links",
        "contact_exposures",
        "contact_cases",
        "contact_persons",
    ):
        op.drop_table(table)
