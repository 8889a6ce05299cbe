"""Contact Covid's benchmarks: a peak day through the API, and name search among millions.

``python -m contact.bench api --cases 50000 --contacts-per-case 4 --database postgresql://...``
enters cases and their contacts through the real HTTP API (doctors' API keys, ``--clients``
concurrent clients), hands each case to level 2, and prints the throughput and latencies: the
autumn-2020 peak was about 50,000 new cases and 200,000 contacts a day.

``python -m contact.bench search --persons 10000000 --database postgresql://...`` fills
``contact_persons`` in the database itself (``INSERT ... SELECT generate_series``: last
names of three of 39 syllables, 39^3 = 59,319 of them, and 66 first names, so common names
match hundreds of rows as real ones do, with their ``search_tokens``), builds the GIN index
of word prefixes (``string_to_array(search_tokens, ' ')``, as migration ``contact_0002``),
then times ``--queries`` searches of the service's query (a word of the name starts with each
word typed, newest 50) and prints p50/p95/p99.

Both print figures; neither is a test. Run them on a quiet machine (docs/contact.md).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from aiohttp import web


def _words(text: str) -> list[str]:
    return text.split()


SYLLABLES = _words(
    "BA BE BI BO DU DA DE LA LE LI LO MA ME MI MO NA NE NI RA RE RI RO SA SE SI TA TE TI TO "
    "VA VE VI GAR MON BER CHA LAU ROU FER"
)
FIRST_NAMES = _words(
    "MARIE JEAN PIERRE MICHEL ANDRE PHILIPPE NATHALIE ISABELLE CATHERINE SYLVIE FRANCOISE "
    "NICOLAS DAVID CHRISTOPHE PATRICK THOMAS JULIEN ALAIN LAURENT ERIC CELINE STEPHANE SANDRINE "
    "VALERIE CHRISTINE SOPHIE LOUIS LUCAS HUGO EMMA JADE LOUISE ALICE CHLOE LINA LEO GABRIEL "
    "RAPHAEL ARTHUR JULES ADAM MAEL PAUL NATHAN ETHAN NOAH SACHA TOM THEO ROSE ANNA MILA ZOE "
    "CAMILLE LEA MANON INES SARAH CLARA LUCIE JULIETTE PAULINE MARGAUX ELODIE AURELIE EMILIE"
)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def _name(rng: random.Random) -> tuple[str, str]:
    last = "".join(rng.choice(SYLLABLES) for _ in range(3))
    return last, rng.choice(FIRST_NAMES)


def _born(rng: random.Random) -> str:
    return f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}"


# --- the API peak day ---------------------------------------------------------------------------
async def bench_api(args: argparse.Namespace) -> None:
    from contact.app import create_app, mount, new_service
    from contact.settings import Settings
    from kit.auth.people import Accounts

    folder = Path(tempfile.mkdtemp(prefix="contact-bench-"))
    database = args.database or f"sqlite:///{folder / 'contact.db'}"
    settings = Settings(database=database, data_dir=str(folder), secret="b" * 40)
    service = new_service(settings)
    await service.open()
    accounts = Accounts(service.store.db, settings.secret, "bench", api_key_prefix="contact")
    doctors = [
        (await accounts.api_keys.create(f"doctor {i}", "doctor", f"rpps:{i}"))[1]
        for i in range(args.clients)
    ]
    root = web.Application()
    mount(root, create_app(settings, service, accounts, jobs=False))
    runner = web.AppRunner(root, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    api = f"http://127.0.0.1:{port}/contact/api/v1"
    latencies: list[float] = []
    errors = 0
    per_client = args.cases // args.clients

    async def post(session: aiohttp.ClientSession, url: str, key: str, body: Any) -> Any:
        nonlocal errors
        started = time.perf_counter()
        async with session.post(url, json=body, headers={"Authorization": f"Bearer {key}"}) as r:
            data = await r.json()
            if r.status >= 300:
                errors += 1
        latencies.append(time.perf_counter() - started)
        return data

    async def client(number: int) -> None:
        rng = random.Random(number)
        key = doctors[number]
        async with aiohttp.ClientSession() as session:
            for _ in range(per_client):
                last, first = _name(rng)
                case = await post(session, f"{api}/cases", key, {
                    "last_name": last, "first_name": first,
                    "birth_date": _born(rng),
                    "phone": f"06{rng.randint(10**7, 10**8 - 1)}", "postcode": "75011",
                    "diagnosis_date": "2020-10-22", "onset_date": "2020-10-20",
                })  # fmt: skip
                for _ in range(args.contacts_per_case):
                    c_last, c_first = _name(rng)
                    await post(session, f"{api}/cases/{case['id']}/contacts", key, {
                        "last_name": c_last, "first_name": c_first,
                        "birth_date": _born(rng),
                        "phone": f"07{rng.randint(10**7, 10**8 - 1)}", "postcode": "75011",
                        "last_contact": "2020-10-19", "relation": rng.choice(["household", "work"]),
                    })  # fmt: skip
                await post(session, f"{api}/cases/{case['id']}/level", key, {"level": 2})

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(args.clients)))
    elapsed = time.perf_counter() - started
    await runner.cleanup()
    await service.close()
    cases = per_client * args.clients
    contacts = cases * args.contacts_per_case
    print(f"database: {database.split('://')[0]}, {args.clients} clients")
    print(f"{cases} cases and {contacts} contacts ({len(latencies)} requests, {errors} errors) "
          f"in {elapsed:.1f} s: {len(latencies) / elapsed:.0f} requests/s")  # fmt: skip
    ms = [s * 1000 for s in latencies]
    print(f"latency ms: p50 {percentile(ms, 50):.1f}, p95 {percentile(ms, 95):.1f}, "
          f"p99 {percentile(ms, 99):.1f}, max {max(ms):.1f}")  # fmt: skip
    day = 50_000 * (2 + args.contacts_per_case)
    print(
        f"a peak day (50,000 cases, {50_000 * args.contacts_per_case} contacts, {day} "
        f"requests) at this rate: {day / (len(latencies) / elapsed) / 60:.0f} minutes"
    )


# --- name search among millions ---------------------------------------------------------------
FILL = """
INSERT INTO contact_persons (nir, identity_key, last_name, first_name, birth_date, sex, phone,
    email, address, postcode, department, search_name, search_tokens, pseudonym, collected_at,
    purged_at)
SELECT NULL, NULL, n.last, n.first, DATE '1930-01-01' + (g % 30000), 'U', NULL, NULL, '',
    '75011', '75', n.last || ' ' || n.first,
    (SELECT string_agg(DISTINCT left(w, k), ' ')
     FROM unnest(ARRAY[n.last, n.first]) AS w, generate_series(3, greatest(3, length(w))) AS k),
    NULL, now(), NULL
FROM generate_series(CAST(:start AS integer), CAST(:stop AS integer)) AS g,
LATERAL (SELECT
    (ARRAY[{syllables}])[1 + (hashint4(g) & 2147483647) % {n}]
    || (ARRAY[{syllables}])[1 + (hashint4(g + 7) & 2147483647) % {n}]
    || (ARRAY[{syllables}])[1 + (hashint4(g + 13) & 2147483647) % {n}] AS last,
    (ARRAY[{firsts}])[1 + (hashint4(g + 29) & 2147483647) % {m}] AS first) AS n
"""


async def bench_search(args: argparse.Namespace) -> None:
    from contact.store import ContactStore
    from kit.db import Database

    if not args.database.startswith("postgresql"):
        raise SystemExit("the search benchmark needs --database postgresql://...")
    store = ContactStore(Database(args.database))
    await store.open()
    db = store.db
    async with db.connect() as conn:
        have = int(
            (await conn.execute(sa.text("SELECT count(*) FROM contact_persons"))).scalar_one()
        )
    if have < args.persons:
        sql = FILL.format(
            syllables=", ".join(f"'{s}'" for s in SYLLABLES), n=len(SYLLABLES),
            firsts=", ".join(f"'{f}'" for f in FIRST_NAMES), m=len(FIRST_NAMES),
        )  # fmt: skip
        started = time.perf_counter()
        async with db.begin() as conn:
            await conn.execute(sa.text("DROP INDEX IF EXISTS contact_persons_tokens"))
        step = 1_000_000
        for start in range(have, args.persons, step):
            async with db.begin() as conn:
                await conn.execute(
                    sa.text(sql), {"start": start, "stop": min(args.persons, start + step) - 1}
                )
        filled = time.perf_counter() - started
        async with db.begin() as conn:
            await conn.execute(sa.text("SET maintenance_work_mem = '512MB'"))
            await conn.execute(
                sa.text(
                    "CREATE INDEX contact_persons_tokens ON contact_persons "
                    "USING gin (string_to_array(search_tokens, ' '))"
                )
            )
            await conn.execute(sa.text("ANALYZE contact_persons"))
        print(f"filled {args.persons - have} persons in {filled:.0f} s, index in "
              f"{time.perf_counter() - started - filled:.0f} s")  # fmt: skip
    async with db.connect() as conn:
        total = int(
            (await conn.execute(sa.text("SELECT count(*) FROM contact_persons"))).scalar_one()
        )
        sample = [
            (r[0], r[1])
            for r in await conn.execute(
                sa.text(
                    "SELECT last_name, first_name FROM contact_persons TABLESAMPLE SYSTEM (1) "
                    "LIMIT :n"
                ),
                {"n": args.queries},
            )
        ]
    rng = random.Random(1)
    queries = []
    for last, first in sample:
        kind = rng.random()
        if kind < 0.5:
            queries.append(f"{last} {first}")  # the full name
        elif kind < 0.8:
            queries.append(last)  # the last name only (hundreds of rows)
        else:
            queries.append(f"{last[: rng.randint(4, 6)]} {first[:3]}")  # a partial name
    timings: list[float] = []
    hits: list[int] = []
    async with db.connect() as conn:
        for text in queries[:20]:  # warm the cache
            await store.search_persons(conn, name=text)
        for text in queries:
            started = time.perf_counter()
            found = await store.search_persons(conn, name=text)
            timings.append((time.perf_counter() - started) * 1000)
            hits.append(len(found))
        # the server's own time for the slowest (what the machine's scheduling adds is the rest)
        slow = sorted(zip(timings, queries, strict=True), reverse=True)[:5]
        server_ms = []
        for _, text in slow:
            words = text.split()
            plan = await conn.execute(
                sa.text(
                    "EXPLAIN (ANALYZE, FORMAT JSON) SELECT id FROM contact_persons "
                    "WHERE purged_at IS NULL AND string_to_array(search_tokens, ' ') @> "
                    "CAST(:words AS text[]) ORDER BY id + 0 DESC LIMIT 50"
                ),
                {"words": [w for w in words if len(w) >= 3]},
            )
            server_ms.append(float(plan.scalar_one()[0]["Execution Time"]))
    await store.close()
    print(f"{len(queries)} searches among {total:,} persons (PostgreSQL, GIN of word prefixes)")
    print(f"ms: p50 {percentile(timings, 50):.1f}, p95 {percentile(timings, 95):.1f}, "
          f"p99 {percentile(timings, 99):.1f}, max {max(timings):.1f}; "
          f"median hits {statistics.median(hits):.0f}")  # fmt: skip
    slowest = sorted(zip(timings, queries, hits, strict=True), reverse=True)[:5]
    print("slowest: " + "; ".join(f"{q!r} {t:.0f} ms ({h} hits)" for t, q, h in slowest))
    print(
        "the same on the server (EXPLAIN ANALYZE): " + ", ".join(f"{m:.2f} ms" for m in server_ms)
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m contact.bench", description=__doc__)
    sub = parser.add_subparsers(dest="what", required=True)
    api = sub.add_parser("api", help="a peak day through the JSON API")
    api.add_argument("--cases", type=int, default=1000)
    api.add_argument("--contacts-per-case", type=int, default=4)
    api.add_argument("--clients", type=int, default=8)
    api.add_argument("--database", default="", help="default: SQLite in a temporary folder")
    search = sub.add_parser(
        "search",
        help="name search among many persons (PostgreSQL; GIN index of word prefixes; "
        "39^3 last names, 66 first names)",
    )
    search.add_argument("--persons", type=int, default=1_000_000)
    search.add_argument("--queries", type=int, default=1000)
    search.add_argument("--database", required=True)
    args = parser.parse_args(argv)
    asyncio.run(bench_api(args) if args.what == "api" else bench_search(args))


if __name__ == "__main__":
    main()
