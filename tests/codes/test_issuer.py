"""The code service over each backend: single use, expiry, revocation, roles, audit."""

from __future__ import annotations

import pytest

from client_sim.clock import VirtualClock
from protocol.codes import SHORT_LENGTH, CodeKind, parse_code
from server.codes.errors import AuthFailed, Conflict, Forbidden, NotFound
from server.codes.issuer import CodeIssuer, CodeState
from server.codes.model import Action, Role
from server.store.base import CodeOutcome


async def test_issued_codes_validate_once_and_never_twice(issuer: CodeIssuer) -> None:
    lab, _ = await issuer.add_org("LAB1", Role.LAB)
    codes = await issuer.issue(lab, CodeKind.LONG, 5, "2026-03-01")
    assert len({c.record.code for c in codes}) == 5
    for c in codes:
        assert parse_code(c.record.code) == (CodeKind.LONG, c.record.code)
        assert (c.record.org, c.record.test_date) == ("LAB1", "2026-03-01")
        assert c.record.expires_at - c.record.issued_at == 7 * 86_400
        assert await issuer.check(c.record.code) is CodeState.VALID
        now = issuer.now_ntp()
        assert await issuer.store.consume_code(c.record.code, now) is CodeOutcome.ACCEPTED
        assert await issuer.store.consume_code(c.record.code, now) is CodeOutcome.USED
        assert await issuer.check(c.record.code) is CodeState.USED


async def test_short_codes_last_an_hour(issuer: CodeIssuer, clock: VirtualClock) -> None:
    doctor, _ = await issuer.add_org("DOC1", Role.DOCTOR)
    [code] = await issuer.issue(doctor, CodeKind.SHORT, 1)
    assert len(code.record.code) == SHORT_LENGTH
    assert code.record.expires_at - code.record.issued_at == 3600
    clock.advance(3599)
    assert await issuer.check(code.record.code) is CodeState.VALID
    clock.advance(1)
    assert await issuer.check(code.record.code) is CodeState.EXPIRED
    assert await issuer.store.consume_code(code.record.code, issuer.now_ntp()) is (
        CodeOutcome.EXPIRED
    )


async def test_revoked_and_expired_are_distinct(issuer: CodeIssuer, clock: VirtualClock) -> None:
    lab, _ = await issuer.add_org("LAB1", Role.LAB)
    revoked, expired = await issuer.issue(lab, CodeKind.LONG, 2)
    await issuer.revoke(revoked.record.code, lab)
    clock.advance(7 * 86_400)
    now = issuer.now_ntp()
    assert await issuer.store.consume_code(revoked.record.code, now) is CodeOutcome.REVOKED
    assert await issuer.store.consume_code(expired.record.code, now) is CodeOutcome.EXPIRED


async def test_roles_and_ownership(issuer: CodeIssuer) -> None:
    lab, key = await issuer.add_org("LAB1", Role.LAB)
    other, _ = await issuer.add_org("LAB2", Role.LAB)
    doctor, _ = await issuer.add_org("DOC1", Role.DOCTOR)
    admin, _ = await issuer.add_org("HQ", Role.ADMIN)
    assert (await issuer.authenticate(key)).name == "LAB1"
    for bad in ("", key[:-1] + ("A" if key[-1] != "A" else "B"), "rk1.LAB9.x", "nonsense"):
        with pytest.raises(AuthFailed):
            await issuer.authenticate(bad)
    with pytest.raises(Forbidden):
        await issuer.issue(lab, CodeKind.SHORT, 1)
    with pytest.raises(Forbidden):
        await issuer.issue(doctor, CodeKind.LONG, 1)
    assert await issuer.issue(admin, CodeKind.SHORT, 1)
    [code] = await issuer.issue(lab, CodeKind.LONG, 1)
    assert await issuer.check(code.record.code, other) is CodeState.UNKNOWN  # not theirs
    with pytest.raises(NotFound):
        await issuer.revoke(code.record.code, other)
    assert await issuer.check(code.record.code, admin) is CodeState.VALID
    with pytest.raises(Conflict):
        await issuer.add_org("LAB1", Role.DOCTOR)


async def test_list_and_audit_never_hold_codes_in_clear(issuer: CodeIssuer) -> None:
    lab, _ = await issuer.add_org("LAB1", Role.LAB)
    codes = await issuer.issue(lab, CodeKind.LONG, 3)
    await issuer.store.consume_code(codes[0].record.code, issuer.now_ntp())
    await issuer.on_consume(codes[0].record.code, CodeOutcome.ACCEPTED)
    await issuer.revoke(codes[1].record.code, lab)
    listed = {r.code: s for r, s in await issuer.list("LAB1")}
    assert listed == {
        codes[0].record.code: CodeState.USED,
        codes[1].record.code: CodeState.REVOKED,
        codes[2].record.code: CodeState.VALID,
    }
    audit = await issuer.issuers.list_audit("LAB1", 100)
    actions = [e.action for e in audit]
    assert actions.count(Action.ISSUE) == 3
    assert Action.USE in actions and Action.REVOKE in actions and Action.ORG_ADD in actions
    hashes = {e.code_hash for e in audit if e.code_hash}
    assert hashes == {await issuer.code_hash(c.record.code) for c in codes}
    text = repr(audit)
    assert not any(c.record.code in text for c in codes)
