"""The directory of e-health tools: publishers' declarations and their moderation.

Revision ID: citizens_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kit.db import UtcDateTime

revision: str = "citizens_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "citizens_services",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("publisher", sa.String(100), nullable=False),
        sa.Column("url", sa.String(300), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("features", sa.String(200), nullable=False),
        sa.Column("audiences", sa.String(100), nullable=False),
        sa.Column("regions", sa.String(100), nullable=False),
        sa.Column("installation", sa.String(16), nullable=False),
        sa.Column("security", sa.String(100), nullable=False),
        sa.Column("free", sa.Boolean(), nullable=False),
        sa.Column("contact_email", sa.String(260), nullable=False),
        sa.Column("search_text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
        sa.Column("reviewed_at", UtcDateTime(), nullable=True),
        sa.Column("reviewed_by", sa.String(64), nullable=True),
        sa.Column("review_note", sa.String(500), nullable=False, server_default=""),
    )
    op.create_index("citizens_services_status", "citizens_services", ["status", "name"])


def downgrade() -> None:
    op.drop_index("citizens_services_status", "citizens_services")
    op.drop_table("citizens_services")
