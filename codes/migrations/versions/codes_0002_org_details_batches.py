"""Organisations' name and postal address as printed on the patient's handout; codes grouped
in the batch they were issued in (a lab downloads a batch again as a sheet or a CSV).

Revision ID: codes_0002
Revises: codes_0001
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "codes_0002"
down_revision: str | Sequence[str] | None = "codes_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "codes_orgs", sa.Column("title", sa.String(200), nullable=False, server_default="")
    )
    op.add_column(
        "codes_orgs", sa.Column("address", sa.String(500), nullable=False, server_default="")
    )
    # Codes issued before this revision belong to no batch (NULL).
    op.add_column("codes_codes", sa.Column("batch", sa.String(24), nullable=True))
    op.create_index("codes_by_batch", "codes_codes", ["org", "batch"])


def downgrade() -> None:
    op.drop_index("codes_by_batch", "codes_codes")
    op.drop_column("codes_codes", "batch")
    op.drop_column("codes_orgs", "address")
    op.drop_column("codes_orgs", "title")
