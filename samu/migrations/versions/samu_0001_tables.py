"""The board's tables: events, the append-only log of each event ("main courante"), transfer
requests and their moves.

Revision ID: samu_0001
Revises:
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "samu_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WHEN = sa.DateTime(timezone=True)
APPEND_ONLY = ("samu_entries", "samu_transfer_moves")


def _sqlite_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}
           BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
        f"""CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}
           BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END""",
    ]


POSTGRESQL_FUNCTION = """CREATE FUNCTION samu_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$"""


def _postgresql_triggers(table: str) -> list[str]:
    return [
        f"""CREATE TRIGGER {table}_no_update_delete BEFORE UPDATE OR DELETE ON {table}
           FOR EACH ROW EXECUTE FUNCTION samu_append_only()""",
        f"""CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
           FOR EACH STATEMENT EXECUTE FUNCTION samu_append_only()""",
    ]


def upgrade() -> None:
    op.create_table(
        "samu_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("lat", sa.Float(), nullable=False),
        sa.Column("lon", sa.Float(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("opened_by", sa.String(200), nullable=False),
        sa.Column("opened_at", WHEN, nullable=False),
        sa.CheckConstraint("status IN ('open', 'closed')", name="samu_events_status"),
    )
    op.create_table(
        "samu_entries",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("samu_events.id"), nullable=False),
        sa.Column("client_id", sa.String(36), nullable=False, unique=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("sender_scope", sa.String(32), nullable=False),
        sa.Column("target_scope", sa.String(32), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("annotates", sa.Integer(), sa.ForeignKey("samu_entries.id"), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("samu_entries_by_event", "samu_entries", ["event_id", "id"])
    op.create_table(
        "samu_transfers",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.Integer(), sa.ForeignKey("samu_events.id"), nullable=True),
        sa.Column("patient", sa.String(200), nullable=False),
        sa.Column("from_finess", sa.String(9), nullable=False),
        sa.Column("to_finess", sa.String(9), nullable=False),
        sa.Column("departement", sa.String(3), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("samu_transfers_by_dep", "samu_transfers", ["departement"])
    op.create_table(
        "samu_transfer_moves",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("transfer_id", sa.Integer(), sa.ForeignKey("samu_transfers.id"), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("from_status", sa.String(12), nullable=True),
        sa.Column("to_status", sa.String(12), nullable=False),
        sqlite_autoincrement=True,
    )
    if op.get_bind().dialect.name == "sqlite":
        statements = [s for t in APPEND_ONLY for s in _sqlite_triggers(t)]
    else:
        statements = [
            POSTGRESQL_FUNCTION,
            *(s for t in APPEND_ONLY for s in _postgresql_triggers(t)),
        ]
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    op.drop_table("samu_transfer_moves")
    op.drop_table("samu_transfers")
    op.drop_table("samu_entries")
    op.drop_table("samu_events")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION samu_append_only()")
