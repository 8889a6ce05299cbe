"""Organisations that issue codes, their roles, and codes as stored: small frozen records."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from nacl.signing import SigningKey, VerifyKey

from codes.errors import BadRequest
from protocol.codes import CodeKind

ORG_NAME = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Organisation names: no dots or separators, so keys and signed messages stay unambiguous."""

ORG_SCOPE_PREFIX = "org:"
"""An organisation's API keys and users carry the scope ``org:<name>``."""


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

ROBERT_SERVER_ROLE = "robert-server"
"""The role of the API key with which the ROBERT server consumes codes."""


def check_org_name(name: str) -> str:
    """``name`` if it is a valid organisation name; BadRequest otherwise."""
    if not ORG_NAME.fullmatch(name):
        raise BadRequest("organisation names are 1-32 of A-Z a-z 0-9 _ -")
    return name


def org_scope(name: str) -> str:
    """The scope of an organisation's keys and users."""
    return ORG_SCOPE_PREFIX + name


TITLE_MAX = 200
ADDRESS_MAX = 500
ADDRESS_LINES = 4
"""A postal address as printed on a handout: at most four lines (name of the building, street,
postcode and town, telephone)."""


def check_title(title: str) -> str:
    """An organisation's full name, trimmed; BadRequest if too long or on several lines."""
    title = title.strip()
    if len(title) > TITLE_MAX or "\n" in title or "\r" in title:
        raise BadRequest(
            f"an organisation's full name is one line of at most {TITLE_MAX} characters"
        )
    return title


def check_address(address: str) -> str:
    """A postal address with its lines trimmed and empty lines dropped; BadRequest if longer
    than a handout can print."""
    lines = [line.strip() for line in address.replace("\r", "\n").split("\n") if line.strip()]
    text = "\n".join(lines)
    if len(lines) > ADDRESS_LINES or len(text) > ADDRESS_MAX:
        raise BadRequest(
            f"an address is at most {ADDRESS_LINES} lines and {ADDRESS_MAX} characters"
        )
    return text


@dataclass(frozen=True, slots=True)
class Organisation:
    """An issuer: its role and its Ed25519 signing seed (its deep links are signed with it),
    and what its patients' handouts print: its full name (``title``) and postal address."""

    name: str
    role: Role
    signing_seed: bytes
    created_at: datetime
    title: str = ""
    address: str = ""

    def __repr__(self) -> str:  # never the seed
        return f"Organisation({self.name!r}, {self.role.value!r})"

    @property
    def display_name(self) -> str:
        """The full name, or the short name when none was given."""
        return self.title or self.name

    @property
    def address_lines(self) -> list[str]:
        """The address, one line each."""
        return self.address.splitlines()

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


class CodeState(StrEnum):
    """What a non-consuming check of a code says."""

    VALID = "valid"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class Outcome(StrEnum):
    """What consuming a code gives: only ACCEPTED lets a report through."""

    ACCEPTED = "accepted"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class CodeRecord:
    """A submission code as issued: canonical text, kind, issuer, test date, validity."""

    code: str
    kind: CodeKind
    org: str
    test_date: str
    issued_at: datetime
    expires_at: datetime
    batch: str | None = None
    """The batch it was issued in (one issuing request); None for codes issued before
    batches were recorded."""

    @property
    def test_day(self) -> date:
        """The test date as a date."""
        return date.fromisoformat(self.test_date)


@dataclass(frozen=True, slots=True)
class Batch:
    """Codes issued together by one request: what a lab downloads again as a sheet or a CSV."""

    id: str
    org: str
    kind: CodeKind
    test_date: str
    issued_at: datetime
    expires_at: datetime
    count: int
    valid: int
    used: int
    revoked: int

    @property
    def test_day(self) -> date:
        """The test date as a date."""
        return date.fromisoformat(self.test_date)

    @property
    def expired(self) -> int:
        """Codes neither used nor revoked whose time is up."""
        return self.count - self.valid - self.used - self.revoked


class Action(StrEnum):
    """What the code service writes in the audit log (besides the kit's own actions)."""

    ORG_ADD = "org_add"
    ISSUE = "issue"
    USE = "use"
    RELEASE = "release"
    VERIFY = "verify"
    REVOKE = "revoke"
