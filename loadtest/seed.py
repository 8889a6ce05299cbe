"""Bulk registrations written straight into the store, bypassing the API (load-test set-up).

Each phone gets a random ID_A, K_A and K_EA, as a registration through the API would (every
status answer then mints it a fresh bundle of tuples, as for any phone). The registrations go
through the store's bulk method
(``Store.create_registrations``: pipelined ``SET NX`` on Redis, ``executemany`` on SQLite);
submission codes for reports come from the code service, issued by a lab.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from pathlib import Path

from loadtest.seedfile import RECORD_SIZE, SeedFile
from protocol.codes import CodeKind
from protocol.epochs import day_of_ntp, ntp_from_unix
from protocol.types import ID_A_SIZE, IdA, MacKey, TupleKey
from server.keys import ServerKeys
from server.settings import Settings
from server.store import open_store
from server.store.base import Registration

SEED_LAB = "loadtest-lab"


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


def _registration(owner: bytes, k_a: bytes, k_ea: bytes) -> Registration:
    return Registration(IdA(owner), MacKey(k_a), TupleKey(k_ea))


async def seed_store(store_url: str, phones: list[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Every registration through the store's bulk method; which ones were created."""
    store = open_store(store_url)
    await store.open()
    try:
        return await store.create_registrations(
            [_registration(owner, k_a, k_ea) for owner, k_a, k_ea in phones]
        )
    finally:
        await store.close()


async def issue_codes(settings: Settings, count: int) -> list[str]:
    """``count`` long (lab) codes from the code service the server uses in-process (its
    database beside the server's data), issued by a lab as a lab's system would."""
    if count <= 0:
        return []
    from codes.app import open_service
    from codes.model import Role
    from codes.settings import Settings as CodesSettings

    service = await open_service(CodesSettings.beside(settings.data_dir))
    try:
        lab = await service.ensure_org(SEED_LAB, Role.LAB)
        return [c.record.code for c in await service.issue(lab, CodeKind.LONG, count)]
    finally:
        await service.close()


def seed(settings: Settings, phones: int, codes: int, out: Path) -> SeedResult:
    """Create the server keys if missing, ``phones`` registrations and ``codes`` codes, and
    write the seed file ``out`` (ID_A and K_A of each phone, the keys directory, codes)."""
    started = time.perf_counter()
    now = ntp_from_unix(time.time())
    ServerKeys.open(
        settings.keys_path, day_of_ntp(now), settings.keys_ahead_days, settings.key_retention_days
    )
    drawn = _random_phones(phones, set())
    url = settings.store_url
    created = asyncio.run(seed_store(url, drawn))
    records = bytearray()
    for (owner, k_a, _), ok in zip(drawn, created, strict=True):
        if ok:
            records += owner + k_a
    issued = asyncio.run(issue_codes(settings, codes))
    seed_file = SeedFile(
        str(settings.keys_path.resolve()), settings.time_start_ntp, url, issued, bytes(records)
    )
    seed_file.write(out)
    return SeedResult(len(records) // RECORD_SIZE, len(issued), time.perf_counter() - started, out)
