"""The directory's store on SQLite and on PostgreSQL (``database_url`` runs each test on
both): moderation and its audit, filters, the accent-free word search, and the schema
module agreeing with the migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from citizens.directory import Declaration, Status
from citizens.store import DirectoryFilter, DirectoryStore, NotPending, metadata
from kit.audit import AuditFilter
from kit.db import Database

NOW = datetime(2020, 11, 3, 9, 30, tzinfo=UTC)
BASE = Declaration(
    name="MédiVisio",
    publisher="Visio Santé SAS",
    url="https://medivisio.example.org/",
    description="Téléconsultation vidéo avec votre médecin traitant, sans rien installer.",
    features=frozenset({"teleconsultation", "prescription"}),
    audiences=frozenset({"patients"}),
    regions=frozenset(),
    installation="browser",
    security=frozenset({"hds", "gdpr"}),
    free=True,
    contact_email="contact@medivisio.example.org",
)
OTHERS = [
    replace(
        BASE, name="Kiné à distance", publisher="Rééduc Connect", free=False,
        description="Télésoin pour les masseurs-kinésithérapeutes, en vidéo.",
        features=frozenset({"telecare"}), regions=frozenset({"53", "52"}), installation="app",
        security=frozenset({"gdpr"}),
    ),
    replace(
        BASE, name="Cabinet Connecté", publisher="LogiMed",
        description="Logiciel de cabinet avec un module de téléconsultation intégré.",
        audiences=frozenset({"professionals"}), regions=frozenset({"11", "84"}),
        installation="software",
    ),
]  # fmt: skip


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[DirectoryStore]:
    directory = DirectoryStore(Database(database_url), clock=lambda: NOW)
    await directory.open()
    try:
        yield directory
    finally:
        await directory.close()


async def names(store: DirectoryStore, **wanted: Any) -> list[str]:
    return [e.declaration.name for e in await store.published(DirectoryFilter(**wanted))]


async def test_a_declaration_is_public_only_once_a_moderator_publishes_it(
    store: DirectoryStore,
) -> None:
    entry_id = await store.submit(BASE)
    assert [e.id for e in await store.pending()] == [entry_id]
    assert await names(store) == []
    entry = await store.review(entry_id, True, moderator="camille", role="moderator", note="ok")
    assert entry.status is Status.PUBLISHED and entry.declaration == BASE
    assert (entry.reviewed_by, entry.reviewed_at, entry.review_note) == ("camille", NOW, "ok")
    assert entry.submitted_at == NOW and entry.submitted_at.tzinfo is not None
    assert await store.pending() == [] and await names(store) == ["MédiVisio"]
    with pytest.raises(NotPending):  # a decision is taken once
        await store.review(entry_id, False, moderator="dominique", role="moderator")
    with pytest.raises(NotPending):
        await store.review(entry_id + 100, True, moderator="camille", role="moderator")
    rejected = await store.submit(OTHERS[0])
    await store.review(rejected, False, moderator="dominique", role="moderator")
    assert await names(store) == ["MédiVisio"] and await store.pending() == []
    audit = await store.audit.query(store.db, AuditFilter(object_type="directory_entry"))
    assert [(a.actor, a.action, a.object_id) for a in audit] == [
        ("dominique", "reject", str(rejected)),
        ("publisher", "create", str(rejected)),
        ("camille", "validate", str(entry_id)),
        ("publisher", "create", str(entry_id)),
    ]


async def test_filters_and_the_word_search(store: DirectoryStore) -> None:
    await store.submit_many([BASE, *OTHERS], publish=True)
    assert await names(store) == ["Cabinet Connecté", "Kiné à distance", "MédiVisio"]
    assert await names(store, feature="teleconsultation") == ["Cabinet Connecté", "MédiVisio"]
    assert await names(store, audience="professionals") == ["Cabinet Connecté"]
    assert await names(store, security="hds") == ["Cabinet Connecté", "MédiVisio"]
    assert await names(store, installation="app") == ["Kiné à distance"]
    assert await names(store, free_only=True) == ["Cabinet Connecté", "MédiVisio"]
    # a region: the services declared for it, and the national ones (no region ticked)
    assert await names(store, region="53") == ["Kiné à distance", "MédiVisio"]
    assert await names(store, region="5") == ["MédiVisio"]  # a code, not a prefix of one
    # words, without accents or case, each starting a word of the entry
    assert await names(store, query="TELECONSULT") == ["Cabinet Connecté", "MédiVisio"]
    assert await names(store, query="téléconsultation vidéo") == ["MédiVisio"]
    assert await names(store, query="kine") == ["Kiné à distance"]
    assert await names(store, query="onsultation") == []  # inside a word: no
    assert await names(store, query="logimed") == ["Cabinet Connecté"]  # the publisher
    assert await names(store, query="%") == await names(store)  # no wildcard: no words
    assert await names(store, query="100%_") == []
    assert await names(store, query="medivisio", region="11", free_only=True) == ["MédiVisio"]


def _differences(conn: sa.Connection) -> list[Any]:
    context = MigrationContext.configure(
        conn,
        opts={
            "include_name": lambda name, kind, _parent: (
                kind != "table" or str(name).startswith("citizens_")
            ),
            "compare_type": True,
        },
    )
    return list(compare_metadata(context, metadata))


async def test_the_schema_module_matches_the_migrations(store: DirectoryStore) -> None:
    async with store.db.connect() as conn:
        assert await conn.run_sync(_differences) == []
