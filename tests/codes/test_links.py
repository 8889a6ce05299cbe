"""Deep links: what the phone checks offline before uploading."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.signing import SigningKey

from codes.links import (
    Authority,
    BadLinkSignature,
    KindNotAllowed,
    LinkError,
    MalformedLink,
    UnknownAuthority,
    make_link,
    parse_link,
    verify_link,
)
from codes.model import Role
from protocol.codes import CodeKind

LONG = "0f8fad5b-d9cb-469f-a165-70867728950e"
KEY = SigningKey(bytes(range(32)))
AUTHORITIES = {
    "LAB1": Authority("LAB1", Role.LAB, KEY.verify_key),
    "DOC1": Authority("DOC1", Role.DOCTOR, KEY.verify_key),
}


def test_signed_link_verifies() -> None:
    link = make_link(LONG, CodeKind.LONG, "2026-03-01", "LAB1", KEY)
    assert link.startswith(
        "stopcovid://report?code=" + LONG + "&type=long&date=2026-03-01&org=LAB1&sig="
    )
    claims = verify_link(link, AUTHORITIES)
    assert (claims.code, claims.kind, claims.test_date, claims.org) == (
        LONG,
        CodeKind.LONG,
        "2026-03-01",
        "LAB1",
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda s: s.replace("2026-03-01", "2026-03-02"), BadLinkSignature),
        (lambda s: s.replace("org=LAB1", "org=LAB2"), UnknownAuthority),
        (lambda s: s.replace("org=LAB1", "org=DOC1"), KindNotAllowed),
        (lambda s: s.replace("type=long", "type=short"), MalformedLink),
        (lambda s: s.replace("stopcovid://", "https://"), MalformedLink),
        (lambda s: s + "&code=" + LONG, MalformedLink),
        (lambda s: s.split("&sig=")[0], MalformedLink),
    ],
)
def test_tampered_links_are_refused(change, error) -> None:  # type: ignore[no-untyped-def]
    link = make_link(LONG, CodeKind.LONG, "2026-03-01", "LAB1", KEY)
    with pytest.raises(error):
        verify_link(change(link), AUTHORITIES)


def test_other_key_does_not_verify() -> None:
    link = make_link(LONG, CodeKind.LONG, "2026-03-01", "LAB1", SigningKey(bytes(32)))
    with pytest.raises(BadLinkSignature):
        verify_link(link, AUTHORITIES)


@given(st.text(max_size=300))
def test_parser_refuses_garbage_with_link_errors_only(text: str) -> None:
    with contextlib.suppress(LinkError):
        parse_link(text)
