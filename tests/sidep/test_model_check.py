"""The store against a model: random batches of new results, re-sends, corrections and late
preliminaries over a few keys, on both databases; the stored rows, the history, the counts and
the events must be the model's."""

from __future__ import annotations

import random

import sqlalchemy as sa

from kit import events
from kit.audit import Actor
from sidep.access import OPERATOR
from sidep.model import Result, Status
from sidep.service import POSITIVE_TOPIC, WITHDRAWN_TOPIC, SidepService
from sidep.store import history
from tests.sidep.conftest import lab_result, parsed

ACTOR = Actor("lab", "lab")
FINAL = (Status.FINAL, Status.CORRECTED)


async def test_random_batches_match_the_model(service: SidepService) -> None:
    rng = random.Random(2020)
    model: dict[str, tuple[Result, Status]] = {}
    versions: dict[str, int] = {}
    expected_events: list[tuple[str, str]] = []
    for _ in range(40):
        batch = []
        before = dict(model)
        expected = [0, 0]
        for _ in range(rng.randint(1, 6)):
            sample = f"S{rng.randint(1, 8)}"
            result = rng.choice([Result.POSITIVE, Result.NEGATIVE, Result.INDETERMINATE])
            status = rng.choice([Status.FINAL, Status.CORRECTED, Status.PRELIMINARY])
            batch.append(parsed(lab_result(sample, result, status)))
            current = model.get(sample)
            if current is None:
                model[sample], versions[sample] = (result, status), 1
                expected[0] += 1
            elif current == (result, status) or (
                status is Status.PRELIMINARY and current[1] in FINAL
            ):
                expected[1] += 1
            else:
                model[sample] = (result, status)
                versions[sample] += 1
                expected[0] += 1
        counts = await service.ingest_many(batch, ACTOR)
        assert [sum(c.accepted for c in counts), sum(c.duplicates for c in counts)] == expected
        for sample in sorted(set(model) | set(before)):
            was = before.get(sample, (None, None))[0] is Result.POSITIVE
            now = model[sample][0] is Result.POSITIVE
            if now and not was:
                expected_events.append((POSITIVE_TOPIC, sample))
            elif was and not now:
                expected_events.append((WITHDRAWN_TOPIC, sample))
    rows = {r.sample_id: r for r in await service.results(OPERATOR, ACTOR, limit=1000)}
    assert {s: (r.result, r.status) for s, r in rows.items()} == {
        s: (v[0].value, v[1].value) for s, v in model.items()
    }
    assert {s: r.version for s, r in rows.items()} == versions
    async with service.store.db.connect() as conn:
        kept = (await conn.execute(sa.select(sa.func.count()).select_from(history))).scalar()
    assert kept == sum(v - 1 for v in versions.values())
    got = (await events.read(service.store.db, limit=1000)).events
    assert sorted((e.topic, e.payload["sample_id"]) for e in got) == sorted(expected_events)
