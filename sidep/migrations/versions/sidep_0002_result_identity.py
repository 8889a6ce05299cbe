"""Each result keeps what its own message said of the patient: the postcode (the person's
row holds only their latest one) and which identity fields the message carried, so that
``results --json`` never shows a value the message lacked. Results stored before this
revision have neither (NULL: the person's identity is shown, as before).

Revision ID: sidep_0002
Revises: sidep_0001
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sidep_0002"
down_revision: str | Sequence[str] | None = "sidep_0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("sidep_results", sa.Column("postcode", sa.String(10), nullable=True))
    op.add_column("sidep_results", sa.Column("identity_sent", sa.String(60), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sidep_results") as batch:
        batch.drop_column("identity_sent")
        batch.drop_column("postcode")
