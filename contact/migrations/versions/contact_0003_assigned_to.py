"""Task lists per agent: ``contact_cases.assigned_to``, the agent who took the case (None:
the platform's queue), indexed for each agent's "my tasks".

Revision ID: contact_0003
Revises: contact_0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "contact_0003"
down_revision: str | Sequence[str] | None = "contact_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("contact_cases", sa.Column("assigned_to", sa.String(100), nullable=True))
    op.create_index("ix_contact_cases_assigned_to", "contact_cases", ["assigned_to"])


def downgrade() -> None:
    op.drop_index("ix_contact_cases_assigned_to", table_name="contact_cases")
    op.drop_column("contact_cases", "assigned_to")
