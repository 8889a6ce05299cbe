"""The deep link a QR code carries, signed by the issuing organisation (Ed25519).

``stopcovid://report?code=<code>&type=<short|long>&date=<YYYY-MM-DD>&org=<ORG>&sig=<b64url>``

The signature covers ``robert-code-link-v1`` and the four fields joined by NUL bytes, in that
order, so a phone can check offline, against the public keys of ``/api/v1/codes/authorities``,
that a code comes from a known authority before it uploads anything. It proves origin only:
whether the code is still valid is decided by the server's store when the report arrives.

Pure functions, no I/O, as ``protocol/``: the app's check is ``verify_link``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from urllib.parse import parse_qs, quote, urlsplit

from nacl.exceptions import BadSignatureError
from nacl.signing import SigningKey, VerifyKey

from codes.model import ORG_NAME, ROLE_KINDS, Role
from protocol.codes import CodeKind, parse_code
from protocol.errors import BadFormat

SCHEME = "stopcovid"
ACTION = "report"
DOMAIN = b"robert-code-link-v1"
_FIELDS = ("code", "type", "date", "org", "sig")


class LinkError(Exception):
    """A deep link the app must refuse."""


class MalformedLink(LinkError):
    """Not a deep link of this format."""


class UnknownAuthority(LinkError):
    """Signed by an organisation absent from the authorities list."""


class BadLinkSignature(LinkError):
    """The signature does not verify under the organisation's public key."""


class KindNotAllowed(LinkError):
    """The authority's role may not issue codes of this kind."""


@dataclass(frozen=True, slots=True)
class CodeLink:
    """The fields of a deep link whose signature verified."""

    code: str
    kind: CodeKind
    test_date: str
    org: str


@dataclass(frozen=True, slots=True)
class Authority:
    """What a phone knows of an issuer: its name, role and public key."""

    org: str
    role: Role
    verify_key: VerifyKey


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    """Inverse of ``b64url``; MalformedLink on bad input."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise MalformedLink("bad base64url") from exc


def signed_message(code: str, kind: CodeKind, test_date: str, org: str) -> bytes:
    """The bytes an organisation signs for one code."""
    return b"\x00".join(
        [DOMAIN, code.encode(), kind.value.encode(), test_date.encode(), org.encode()]
    )


def make_link(code: str, kind: CodeKind, test_date: str, org: str, key: SigningKey) -> str:
    """The signed deep link for a code issued by ``org``."""
    sig = key.sign(signed_message(code, kind, test_date, org)).signature
    return (
        f"{SCHEME}://{ACTION}?code={quote(code)}&type={kind.value}&date={test_date}"
        f"&org={org}&sig={b64url(sig)}"
    )


def parse_link(link: str) -> tuple[CodeLink, bytes]:
    """The fields and signature of a link, checked for shape only; MalformedLink otherwise."""
    try:
        parts = urlsplit(link.strip())
    except ValueError as exc:  # e.g. an unbalanced '[' in the host
        raise MalformedLink("not a URL") from exc
    if parts.scheme != SCHEME or parts.netloc != ACTION or parts.path not in ("", "/"):
        raise MalformedLink(f"not a {SCHEME}://{ACTION} link")
    query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=False)
    if set(query) != set(_FIELDS) or any(len(v) != 1 for v in query.values()):
        raise MalformedLink("the link needs exactly code, type, date, org and sig")
    fields = {name: values[0] for name, values in query.items()}
    try:
        kind, code = parse_code(fields["code"])
        claimed = CodeKind(fields["type"])
        date.fromisoformat(fields["date"])
    except (BadFormat, ValueError) as exc:
        raise MalformedLink(str(exc)) from exc
    if kind is not claimed or code != fields["code"]:
        raise MalformedLink("code and type disagree")
    if not ORG_NAME.fullmatch(fields["org"]):
        raise MalformedLink("bad organisation name")
    signature = b64url_decode(fields["sig"])
    if len(signature) != 64:
        raise MalformedLink("an Ed25519 signature is 64 bytes")
    return CodeLink(code, kind, fields["date"], fields["org"]), signature


def verify_link(link: str, authorities: Mapping[str, Authority]) -> CodeLink:
    """What the app does before uploading: shape, known authority, role, signature."""
    fields, signature = parse_link(link)
    authority = authorities.get(fields.org)
    if authority is None:
        raise UnknownAuthority(f"{fields.org} is not a known authority")
    if fields.kind not in ROLE_KINDS[authority.role]:
        raise KindNotAllowed(f"a {authority.role} does not issue {fields.kind} codes")
    message = signed_message(fields.code, fields.kind, fields.test_date, fields.org)
    try:
        authority.verify_key.verify(message, signature)
    except BadSignatureError as exc:
        raise BadLinkSignature("signature does not verify") from exc
    return fields


def authorities_from_json(body: Mapping[str, object]) -> dict[str, Authority]:
    """Parse the body of ``GET /api/v1/codes/authorities`` (the app caches it)."""
    entries = body.get("authorities")
    if not isinstance(entries, list):
        raise MalformedLink("authorities must be a list")
    found: dict[str, Authority] = {}
    for entry in entries:
        if not isinstance(entry, dict) or entry.get("alg") != "Ed25519":
            raise MalformedLink("each authority needs alg Ed25519")
        key = b64url_decode(str(entry.get("publicKey", "")))
        if len(key) != 32:
            raise MalformedLink("an Ed25519 public key is 32 bytes")
        org = str(entry.get("org", ""))
        found[org] = Authority(org, Role(str(entry.get("role"))), VerifyKey(key))
    return found
