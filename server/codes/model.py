"""Organisations that issue codes, their roles, and audit entries: small frozen records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from nacl.signing import SigningKey, VerifyKey

from protocol.codes import CodeKind
from server.codes.errors import BadRequest

ORG_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Organisation names: no dots or separators, so keys and signed messages stay unambiguous."""


class Role(StrEnum):
    """What an organisation may do; see ``ROLE_KINDS``."""

    LAB = "lab"
    DOCTOR = "doctor"
    ADMIN = "admin"


ROLE_KINDS: dict[Role, frozenset[CodeKind]] = {
    # As France ran it: labs print long codes on results, doctors read out short ones.
    Role.LAB: frozenset({CodeKind.LONG}),
    Role.DOCTOR: frozenset({CodeKind.SHORT}),
    Role.ADMIN: frozenset({CodeKind.SHORT, CodeKind.LONG}),
}


def check_org_name(name: str) -> str:
    """``name`` if it is a valid organisation name; BadRequest otherwise."""
    if not ORG_NAME.fullmatch(name):
        raise BadRequest("organisation names are 1-32 of A-Z a-z 0-9 _ -")
    return name


@dataclass(frozen=True, slots=True)
class Organisation:
    """An issuer: its role, the SHA-256 of its API key, and its Ed25519 signing seed."""

    name: str
    role: Role
    key_hash: bytes
    signing_seed: bytes
    created_at: int

    @property
    def signing_key(self) -> SigningKey:
        """The key that signs this organisation's deep links."""
        return SigningKey(self.signing_seed)

    @property
    def verify_key(self) -> VerifyKey:
        """The public key phones check deep links against."""
        return self.signing_key.verify_key

    def may_issue(self, kind: CodeKind) -> bool:
        """Whether the role allows issuing codes of ``kind``."""
        return kind in ROLE_KINDS[self.role]


class Action(StrEnum):
    """What an audit entry records."""

    ORG_ADD = "org_add"
    ISSUE = "issue"
    USE = "use"
    VERIFY = "verify"
    REVOKE = "revoke"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """Who (organisation), when (Unix seconds), what, which code (keyed hash), and outcome.

    Never anything about a patient or a reporting phone: no address, no identifier.
    """

    at: int
    org: str
    action: Action
    code_hash: str = ""
    outcome: str = ""
