"""The kit's tables, as ``kit/migrations/`` creates them, for SQLAlchemy Core queries.

Migrations create the schema; these definitions only describe it to queries. A test compares
the two on both backends (``tests/kit/test_db.py``), so they cannot drift apart unnoticed.

Conventions every service's tables follow too:
- identifiers that only grow (audit, outbox) are ``AUTOINCREMENT`` on SQLite, which otherwise
  reuses the largest id after it is deleted; a reader's "after id N" must never miss a row;
- times are ``UtcDateTime``: aware UTC datetimes in and out, on both backends;
- no client address, name or other personal datum is stored where a record number will do.
"""

from __future__ import annotations

import sqlalchemy as sa

from kit.db import UtcDateTime

metadata = sa.MetaData()

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
"""A 64-bit id; on SQLite ``INTEGER``, the only type that is the rowid (and autoincrements)."""

audit = sa.Table(
    "kit_audit",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False),
    sa.Column("detail", sa.String(500), nullable=False),
    sa.Index("kit_audit_object", "object_type", "object_id"),
    sa.Index("kit_audit_actor", "actor"),
    sqlite_autoincrement=True,
)

users = sa.Table(
    "kit_users",
    metadata,
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
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("password_changed_at", UtcDateTime(), nullable=False),
)

api_keys = sa.Table(
    "kit_api_keys",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.LargeBinary(32), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(64), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime(), nullable=True),
    sa.Column("last_used_at", UtcDateTime(), nullable=True),
    sqlite_autoincrement=True,
)

outbox = sa.Table(
    "kit_outbox",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("key", sa.String(200), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("kit_outbox_created_at", "created_at"),
    sqlite_autoincrement=True,
)

event_cursors = sa.Table(
    "kit_event_cursors",
    metadata,
    sa.Column("consumer", sa.String(100), primary_key=True),
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("last_id", sa.BigInteger(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

notifications = sa.Table(
    "kit_notifications",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("recipient", sa.String(500), nullable=False),
    sa.Column("subject", sa.String(500), nullable=False),
    sa.Column("body", sa.Text(), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("sent_at", UtcDateTime(), nullable=True),
    sa.Column("last_error", sa.String(200), nullable=True),
    sa.Index("kit_notifications_due", "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

notification_attachments = sa.Table(
    "kit_notification_attachments",
    metadata,
    sa.Column("id", BigId, primary_key=True, autoincrement=True),
    sa.Column(
        "notification_id",
        sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
        sa.ForeignKey("kit_notifications.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("content", sa.LargeBinary(), nullable=False),
)
