"""Alembic environment of these migrations: run by kit.db.Database.migrate()."""

from alembic import context

from kit.db import run_migrations_env

run_migrations_env(context)
