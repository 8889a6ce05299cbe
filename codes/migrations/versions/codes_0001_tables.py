"""The code service's tables: its deployment secret, the issuing organisations, the codes.

Revision ID: codes_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "codes_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "codes_meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
    )
    op.create_table(
        "codes_orgs",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("signing_seed", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
    )
    op.create_table(
        "codes_codes",
        sa.Column("code", sa.String(36), primary_key=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("org", sa.String(32), nullable=False),
        sa.Column("test_date", sa.String(10), nullable=False),
        sa.Column("issued_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.CheckConstraint("state IN ('valid', 'used', 'revoked')", name="codes_state"),
    )
    op.create_index("codes_by_org", "codes_codes", ["org", "issued_at"])
    op.create_index("codes_by_expiry", "codes_codes", ["expires_at"])


def downgrade() -> None:
    op.drop_table("codes_codes")
    op.drop_table("codes_orgs")
    op.drop_table("codes_meta")
