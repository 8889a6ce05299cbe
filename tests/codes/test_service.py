"""The code service on each database: single use, expiry, revocation, roles, audit."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest

from client_sim.clock import VirtualClock
from codes.errors import AuthFailed, BadRequest, BadTestDate, Conflict, Forbidden, NotFound
from codes.model import CodeState, Role
from codes.service import CodeService
from kit.audit import Actor, AuditFilter
from protocol.codes import SHORT_LENGTH, CodeKind, parse_code


async def test_issued_codes_validate_once_and_never_twice(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    codes = await service.issue(lab, CodeKind.LONG, 5, "2026-03-01")
    assert len({c.record.code for c in codes}) == 5
    for c in codes:
        assert parse_code(c.record.code) == (CodeKind.LONG, c.record.code)
        assert (c.record.org, c.record.test_date) == ("LAB1", "2026-03-01")
        assert c.record.expires_at - c.record.issued_at == timedelta(days=7)
        assert await service.check(c.record.code) is CodeState.VALID
        assert await service.consume(c.record.code) == "accepted"
        assert await service.consume(c.record.code) == "used"
        assert await service.check(c.record.code) is CodeState.USED


async def test_short_codes_last_an_hour(service: CodeService, clock: VirtualClock) -> None:
    doctor, _ = await service.add_org("DOC1", Role.DOCTOR)
    [code] = await service.issue(doctor, CodeKind.SHORT, 1)
    assert len(code.record.code) == SHORT_LENGTH
    assert code.record.expires_at - code.record.issued_at == timedelta(hours=1)
    clock.advance(3599)
    assert await service.check(code.record.code) is CodeState.VALID
    clock.advance(1)
    assert await service.check(code.record.code) is CodeState.EXPIRED
    assert await service.consume(code.record.code) == "expired"


async def test_revoked_expired_unknown_are_distinct(
    service: CodeService, clock: VirtualClock
) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    revoked, expired = await service.issue(lab, CodeKind.LONG, 2)
    await service.revoke(revoked.record.code, lab)
    clock.advance(7 * 86_400)
    assert await service.consume(revoked.record.code) == "revoked"
    assert await service.consume(expired.record.code) == "expired"
    assert await service.consume("0f8fad5b-d9cb-469f-a165-70867728950e") == "unknown"


async def test_release_only_undoes_a_use(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    used, revoked = (c.record.code for c in await service.issue(lab, CodeKind.LONG, 2))
    assert await service.consume(used) == "accepted"
    await service.release(used)
    assert await service.consume(used) == "accepted"
    await service.revoke(revoked, lab)
    await service.release(revoked)
    assert await service.consume(revoked) == "revoked"


async def test_consume_exactly_once_under_concurrency(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    [code] = await service.issue(lab, CodeKind.LONG, 1)
    outcomes = await asyncio.gather(*(service.consume(code.record.code) for _ in range(20)))
    assert outcomes.count("accepted") == 1 and outcomes.count("used") == 19


async def test_roles_and_ownership(service: CodeService) -> None:
    lab, key = await service.add_org("LAB1", Role.LAB)
    other, _ = await service.add_org("LAB2", Role.LAB)
    doctor, _ = await service.add_org("DOC1", Role.DOCTOR)
    admin, _ = await service.add_org("HQ", Role.ADMIN)
    assert (await service.authenticate(key)).name == "LAB1"
    forged = key[:-1] + ("A" if key[-1] != "A" else "B")
    for bad in ("", forged, "rk1.LAB9.x", "nonsense", "codes_999_x"):
        with pytest.raises(AuthFailed):
            await service.authenticate(bad)
    with pytest.raises(Forbidden):
        await service.issue(lab, CodeKind.SHORT, 1)
    with pytest.raises(Forbidden):
        await service.issue(doctor, CodeKind.LONG, 1)
    assert await service.issue(admin, CodeKind.SHORT, 1)
    [code] = await service.issue(lab, CodeKind.LONG, 1)
    assert await service.check(code.record.code, other) is CodeState.UNKNOWN  # not theirs
    with pytest.raises(NotFound):
        await service.revoke(code.record.code, other)
    assert await service.check(code.record.code, admin) is CodeState.VALID
    with pytest.raises(Conflict):
        await service.add_org("LAB1", Role.DOCTOR)


async def test_a_revoked_key_no_longer_authenticates(service: CodeService) -> None:
    _, key = await service.add_org("LAB1", Role.LAB)
    newer = await service.new_key("LAB1")
    [record] = [k for k in await service.api_keys.list() if key.startswith(f"codes_{k.id}_")]
    await service.api_keys.revoke(record.id)
    with pytest.raises(AuthFailed):
        await service.authenticate(key)
    assert (await service.authenticate(newer)).name == "LAB1"


async def test_test_dates_are_plausible(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    for bad, reason in (("2026-03-04", "future"), ("2026-01-01", "too_old"), ("hier", "format")):
        with pytest.raises(BadTestDate) as refused:
            await service.issue(lab, CodeKind.LONG, 1, bad)
        assert refused.value.reason == reason and refused.value.status == 400
    [code] = await service.issue(lab, CodeKind.LONG, 1)
    assert code.record.test_date == "2026-03-02"
    # A machine east of UTC may already be on the 3rd; a person's own calendar is exact.
    assert service.check_test_date("2026-03-03") == "2026-03-03"
    with pytest.raises(BadTestDate):
        service.check_test_date("2026-03-03", today=date(2026, 3, 2))
    assert service.check_test_date(None, today=date(2026, 3, 3)) == "2026-03-03"


async def test_each_issue_is_a_batch_read_again_with_links_and_audited(
    service: CodeService, clock: VirtualClock
) -> None:
    lab = await service.create_org("LAB1", Role.LAB, "Labo", "1 rue A")
    other = await service.create_org("LAB2", Role.LAB)
    first = await service.issue(lab, CodeKind.LONG, 3, by=Actor("tech.one", "lab"))
    clock.advance(60)
    second = await service.issue(lab, CodeKind.LONG, 2)
    assert (
        len({c.record.batch for c in first}) == 1
        and first[0].record.batch != second[0].record.batch
    )
    batch = first[0].record.batch or ""
    again = await service.batch(lab, batch, Actor("tech.one", "lab"), export=True)
    assert sorted(i.link for i, _ in again) == sorted(c.link for c in first)
    assert {s for _, s in again} == {CodeState.VALID}
    with pytest.raises(NotFound):
        await service.batch(other, batch)  # another lab's batch does not exist for it
    assert [b.count for b in await service.batches(lab)] == [2, 3]
    found = await service.own_code(lab, first[0].record.code.upper())
    assert found is not None and found[0].link == first[0].link
    assert await service.own_code(other, first[0].record.code) is None
    audit = await service.store.audit.query(service.store.db, AuditFilter(actor="tech.one"))
    assert [(e.action, e.object_type) for e in audit][:1] == [("export", "batch")]
    assert [e.action for e in audit].count("issue") == 3


async def test_organisations_carry_what_their_handouts_print(service: CodeService) -> None:
    org = await service.create_org("LAB1", Role.LAB, "  Labo Biomed ", " 1 rue A \n\n75011 Paris ")
    assert (org.title, org.address_lines) == ("Labo Biomed", ["1 rue A", "75011 Paris"])
    for title, address in (("x" * 201, ""), ("two\nlines", ""), ("ok", "a\nb\nc\nd\ne")):
        with pytest.raises(BadRequest):
            await service.create_org("LAB2", Role.LAB, title, address)
    changed = await service.update_org("LAB1", "Laboratoire Biomed", "")
    assert changed.display_name == "Laboratoire Biomed" and changed.address_lines == []
    with pytest.raises(NotFound):
        await service.update_org("LAB9", "x", "")
    assert (await service.create_org("LAB3", Role.LAB)).display_name == "LAB3"


async def test_short_codes_are_not_reissued_while_kept(
    service: CodeService, clock: VirtualClock
) -> None:
    doctor, _ = await service.add_org("DOC1", Role.DOCTOR)
    await service.issue(doctor, CodeKind.SHORT, 50)
    clock.advance(2 * 3600)
    assert await service.purge_expired() == 0  # kept a day past expiry: not drawn again
    assert len(await service.list("DOC1")) == 50
    clock.advance(86_400)
    assert await service.purge_expired() == 50
    assert await service.list("DOC1") == []


async def test_list_and_audit_never_hold_codes_in_clear(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    codes = await service.issue(lab, CodeKind.LONG, 3)
    await service.consume(codes[0].record.code)
    await service.revoke(codes[1].record.code, lab)
    listed = {r.code: s for r, s in await service.list("LAB1")}
    assert listed == {
        codes[0].record.code: CodeState.USED,
        codes[1].record.code: CodeState.REVOKED,
        codes[2].record.code: CodeState.VALID,
    }
    audit = await service.store.audit.query(service.store.db, AuditFilter(), limit=100)
    actions = [e.action for e in audit]
    assert actions.count("issue") == 3
    assert {"use", "revoke", "org_add"} <= set(actions)
    hashes = {e.object_id for e in audit if e.object_type == "code"}
    assert hashes == {service.code_hash(c.record.code) for c in codes}
    text = repr(audit)
    assert not any(c.record.code in text for c in codes)
    [use] = [e for e in audit if e.action == "use"]
    assert use.actor == "robert-server" and use.detail == "LAB1 accepted"


async def test_bulk_issue_stores_every_code_once(service: CodeService) -> None:
    lab, _ = await service.add_org("LAB1", Role.LAB)
    codes = await service.issue(lab, CodeKind.LONG, 12_000)
    assert len({c.record.code for c in codes}) == 12_000
    assert len(await service.list("LAB1", 20_000)) == 12_000
