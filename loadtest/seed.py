"""Bulk registrations written straight into the store, bypassing the API (load-test set-up).

Each phone gets a random ID_A, K_A and K_EA, as a registration through the API would, and a
``tuples_until_epoch`` a year ahead so that status requests never mint tuples: the load test
then measures the status path alone. Redis gets pipelined ``SET NX`` batches of the store's own
packed layout and key names; SQLite gets ``executemany`` into the store's own table. Submission
codes for reports go through the store API.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from loadtest.seedfile import RECORD_SIZE, SeedFile
from protocol.codes import CodeKind, CodePolicy, generate_code
from protocol.epochs import EPOCHS_PER_DAY, day_of_ntp, epoch_of, ntp_from_unix
from protocol.types import ID_A_SIZE, IdA, MacKey, TupleKey
from server.keys import ServerKeys
from server.settings import Settings
from server.store import open_store
from server.store.base import CodeRecord, Registration
from server.store.redis import connect_sync_client, pack_registration, registration_key
from server.store.sqlite import _REGISTRATION_COLUMNS, SqliteStore

BATCH = 10_000
TUPLES_AHEAD_EPOCHS = 365 * EPOCHS_PER_DAY
"""How far ahead the seeded registrations' tuples reach: no status will be due tuples."""


@dataclass(frozen=True, slots=True)
class SeedResult:
    """What ``seed`` did and how long it took."""

    phones: int
    codes: int
    seconds: float
    out: Path


def _random_phones(count: int, exclude: set[bytes]) -> list[tuple[bytes, bytes, bytes]]:
    """``count`` (ID_A, K_A, K_EA) with distinct ID_As not in ``exclude`` (which grows)."""
    phones: list[tuple[bytes, bytes, bytes]] = []
    while len(phones) < count:
        need = count - len(phones)
        ids = os.urandom(need * ID_A_SIZE)
        keys = os.urandom(need * 64)
        for i in range(need):
            owner = ids[i * ID_A_SIZE : (i + 1) * ID_A_SIZE]
            if owner in exclude:  # ~0.5 collisions expected among 10^6 40-bit draws
                continue
            exclude.add(owner)
            phones.append((owner, keys[i * 64 : i * 64 + 32], keys[i * 64 + 32 : i * 64 + 64]))
    return phones


def _registration(owner: bytes, k_a: bytes, k_ea: bytes, until: int) -> Registration:
    return Registration(IdA(owner), MacKey(k_a), TupleKey(k_ea), tuples_until_epoch=until)


def seed_redis(url: str, phones: list[tuple[bytes, bytes, bytes]], until: int) -> list[bool]:
    """SET NX every registration in pipelined batches; which ones were created."""
    client = connect_sync_client(url)
    created: list[bool] = []
    try:
        for start in range(0, len(phones), BATCH):
            pipe = client.pipeline(transaction=False)
            for owner, k_a, k_ea in phones[start : start + BATCH]:
                reg = _registration(owner, k_a, k_ea, until)
                pipe.set(registration_key(reg.id_a), pack_registration(reg), nx=True)
            created += [bool(r) for r in pipe.execute()]
    finally:
        client.close()
    return created


def seed_sqlite(path: str, phones: list[tuple[bytes, bytes, bytes]], until: int) -> list[bool]:
    """INSERT OR IGNORE every registration (schema made by SqliteStore); which were created."""
    store = SqliteStore(path)

    async def schema() -> None:
        await store.open()
        await store.close()

    asyncio.run(schema())
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA busy_timeout = 5000")
    sql = f"INSERT OR IGNORE INTO registrations ({_REGISTRATION_COLUMNS}) VALUES ({'?,' * 9}?)"
    created: list[bool] = []
    try:
        for start in range(0, len(phones), BATCH):
            chunk = phones[start : start + BATCH]
            rows = []
            for owner, k_a, k_ea in chunk:
                r = _registration(owner, k_a, k_ea, until)
                risk = r.risk
                rows.append(
                    (owner, k_a, k_ea, r.last_status_epoch, r.last_status_time,
                     r.tuples_until_epoch, int(risk.at_risk), risk.risk_level,
                     risk.last_contact_epoch, risk.last_scoring_epoch)
                )  # fmt: skip
            conn.execute("BEGIN IMMEDIATE")
            inserted = conn.executemany(sql, rows).rowcount
            conn.execute("COMMIT")
            if inserted == len(chunk):
                created += [True] * len(chunk)
                continue
            for owner, k_a, _ in chunk:  # an ID_A existed already: keep only our rows
                row = conn.execute(
                    "SELECT k_a FROM registrations WHERE id_a = ?", (owner,)
                ).fetchone()
                created.append(row is not None and bytes(row[0]) == k_a)
    finally:
        conn.close()
    return created


async def issue_codes(store_url: str, count: int, now_ntp: int) -> list[str]:
    """``count`` long (lab) codes, valid for 7 days, through the store API."""
    if count <= 0:
        return []
    store = open_store(store_url)
    await store.open()
    try:
        lifetime = CodePolicy().lifetime(CodeKind.LONG)
        records = [
            CodeRecord(
                generate_code(CodeKind.LONG, os.urandom), "long", now_ntp, now_ntp + lifetime
            )
            for _ in range(count)
        ]
        await store.add_codes(records)
        return [r.code for r in records]
    finally:
        await store.close()


def seed(settings: Settings, phones: int, codes: int, out: Path) -> SeedResult:
    """Create the server keys if missing, ``phones`` registrations and ``codes`` codes, and
    write the seed file ``out`` (ID_A and K_A of each phone, the keys directory, codes)."""
    started = time.perf_counter()
    now = ntp_from_unix(time.time())
    ServerKeys.open(
        settings.keys_path, day_of_ntp(now), settings.keys_ahead_days, settings.key_retention_days
    )
    until = epoch_of(now, settings.time_start_ntp) + TUPLES_AHEAD_EPOCHS
    drawn = _random_phones(phones, set())
    url = settings.store_url
    if url.startswith(("redis://", "rediss://", "redis+cluster://", "rediss+cluster://")):
        created = seed_redis(url, drawn, until)
    elif url.startswith("sqlite://"):
        created = seed_sqlite(url.partition("://")[2], drawn, until)
    else:
        raise ValueError(f"cannot seed store {url.split('@')[-1]!r}")
    records = bytearray()
    for (owner, k_a, _), ok in zip(drawn, created, strict=True):
        if ok:
            records += owner + k_a
    issued = asyncio.run(issue_codes(url, codes, now))
    seed_file = SeedFile(
        str(settings.keys_path.resolve()), settings.time_start_ntp, url, issued, bytes(records)
    )
    seed_file.write(out)
    return SeedResult(len(records) // RECORD_SIZE, len(issued), time.perf_counter() - started, out)
