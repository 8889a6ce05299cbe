"""The kit's tables: users, API keys, audit log (append-only), outbox, event cursors,
notifications.

Revision ID: kit_0001
Revises:
Create Date: 2026-03-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "kit_0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
WHEN = sa.DateTime(timezone=True)

# The audit log refuses UPDATE and DELETE (and, on PostgreSQL, TRUNCATE) in the database
# itself, so no code path of any service, and no operator with the service's credentials
# using an SQL shell, can rewrite history without first dropping a trigger (a schema change,
# which the service's database role should not be allowed: see docs/kit.md).
SQLITE_TRIGGERS = [
    """CREATE TRIGGER kit_audit_no_update BEFORE UPDATE ON kit_audit
       BEGIN SELECT RAISE(ABORT, 'kit_audit is append-only'); END""",
    """CREATE TRIGGER kit_audit_no_delete BEFORE DELETE ON kit_audit
       BEGIN SELECT RAISE(ABORT, 'kit_audit is append-only'); END""",
]
POSTGRESQL_TRIGGERS = [
    """CREATE FUNCTION kit_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'kit_audit is append-only'; END $$""",
    """CREATE TRIGGER kit_audit_no_update_delete BEFORE UPDATE OR DELETE ON kit_audit
       FOR EACH ROW EXECUTE FUNCTION kit_audit_append_only()""",
    """CREATE TRIGGER kit_audit_no_truncate BEFORE TRUNCATE ON kit_audit
       FOR EACH STATEMENT EXECUTE FUNCTION kit_audit_append_only()""",
]


def upgrade() -> None:
    op.create_table(
        "kit_audit",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("detail", sa.String(500), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("kit_audit_object", "kit_audit", ["object_type", "object_id"])
    op.create_index("kit_audit_actor", "kit_audit", ["actor"])
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == "sqlite" else POSTGRESQL_TRIGGERS:
        op.execute(statement)

    op.create_table(
        "kit_users",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=False),
        sa.Column("totp_secret", sa.Text(), nullable=False),
        sa.Column("totp_confirmed", sa.Boolean(), nullable=False),
        sa.Column("totp_last_step", sa.BigInteger(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("password_changed_at", WHEN, nullable=False),
    )
    op.create_table(
        "kit_api_keys",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(64), nullable=False),
        sa.Column("scope", sa.String(200), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("revoked_at", WHEN, nullable=True),
        sa.Column("last_used_at", WHEN, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "kit_outbox",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("kit_outbox_created_at", "kit_outbox", ["created_at"])
    op.create_table(
        "kit_event_cursors",
        sa.Column("consumer", sa.String(100), primary_key=True),
        sa.Column("source", sa.String(200), primary_key=True),
        sa.Column("last_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_table(
        "kit_notifications",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("recipient", sa.String(500), nullable=False),
        sa.Column("subject", sa.String(500), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("last_error", sa.String(200), nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("kit_notifications_due", "kit_notifications", ["status", "next_attempt_at"])
    op.create_table(
        "kit_notification_attachments",
        sa.Column("id", BIG_ID, primary_key=True, autoincrement=True),
        sa.Column(
            "notification_id",
            BIG_ID,
            sa.ForeignKey("kit_notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
    )
    op.create_index(
        "ix_kit_notification_attachments_notification_id",
        "kit_notification_attachments",
        ["notification_id"],
    )


def downgrade() -> None:
    for table in (
        "kit_notification_attachments",
        "kit_notifications",
        "kit_event_cursors",
        "kit_outbox",
        "kit_api_keys",
        "kit_users",
        "kit_audit",
    ):
        op.drop_table(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION kit_audit_append_only()")
