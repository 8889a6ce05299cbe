"""The board's pure rules: scopes and who sees which message, roles, transfer moves."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from samu.access import Access
from samu.model import TRANSITIONS, TransferStatus, is_final, may_move
from samu.scopes import (
    NATIONAL_SCOPE,
    Scope,
    ScopeError,
    departements,
    may_address,
    may_see,
    parse_scope,
    regions,
    zones,
)

PARIS = parse_scope("samu:75")
LYON = parse_scope("samu:69")
IDF = parse_scope("region:11")
ZONE_PARIS = parse_scope("zone:paris")


def test_reference_tables_cover_france() -> None:
    assert len(departements()) == 101
    assert len(regions()) == 18
    assert {r[1] for r in regions().values()} == set(zones())
    assert all(region in regions() for _, region in departements().values())


@pytest.mark.parametrize(
    ("departement", "region", "zone"),
    [
        ("75", "11", "paris"),
        ("59", "32", "nord"),
        ("35", "53", "ouest"),
        ("45", "24", "ouest"),  # Centre-Val de Loire is in the West zone
        ("33", "75", "sud-ouest"),
        ("31", "76", "sud"),  # Occitanie is in the South zone since 2016
        ("2A", "94", "sud"),
        ("13", "93", "sud"),
        ("69", "84", "sud-est"),
        ("67", "44", "est"),
        ("21", "27", "est"),
        ("971", "01", "antilles"),
        ("973", "03", "guyane"),
        ("976", "06", "sud-ocean-indien"),
    ],
)
def test_a_samu_lies_in_its_region_and_zone(departement: str, region: str, zone: str) -> None:
    chain = [str(s) for s in parse_scope(f"samu:{departement}").ancestry()]
    assert chain == [f"samu:{departement}", f"region:{region}", f"zone:{zone}", "national"]


@pytest.mark.parametrize(
    "text", ["", "samu:00", "samu:20", "region:99", "zone:atlantis", "national:", "SAMU:75"]
)
def test_bad_scopes_are_refused(text: str) -> None:
    with pytest.raises(ScopeError):
        parse_scope(text)


def test_who_sees_which_message() -> None:
    # A SAMU sees what is addressed to it and to the scopes containing it.
    for target in (PARIS, IDF, ZONE_PARIS, NATIONAL_SCOPE):
        assert may_see(PARIS, target)
    assert not may_see(PARIS, LYON)
    assert not may_see(PARIS, parse_scope("samu:92"))  # a neighbour, same region
    assert not may_see(PARIS, parse_scope("region:84"))
    # An ARS does not see what is addressed to one of its SAMU, unless it sent it.
    assert not may_see(IDF, PARIS)
    assert may_see(IDF, PARIS, sender=IDF)
    assert may_see(IDF, ZONE_PARIS) and not may_see(IDF, parse_scope("zone:sud"))
    # National sees everything.
    assert may_see(NATIONAL_SCOPE, LYON) and may_see(NATIONAL_SCOPE, parse_scope("zone:sud"))


def test_who_may_address_whom() -> None:
    assert may_address(PARIS, IDF) and may_address(PARIS, NATIONAL_SCOPE)
    assert may_address(IDF, PARIS) and may_address(NATIONAL_SCOPE, LYON)
    assert not may_address(PARIS, LYON)
    assert not may_address(IDF, parse_scope("region:84"))


def test_roles_take_their_scope_at_their_level() -> None:
    assert Access("regulator", "samu:75").scope == PARIS
    assert Access("regulator", "region:11").scope is None  # a regulator is of one SAMU
    assert Access("ars", "region:11").scope == IDF
    assert Access("national", "").scope == NATIONAL_SCOPE
    assert Access("hospital", "finess:750100125").scope is None
    assert not Access("hospital", "finess:750100125").may_read_board
    assert not Access("admin", "national").may_post


def test_transfers_by_role() -> None:
    staff = Access("hospital", "finess:750100125")
    assert staff.may_read_transfer("94", "940100043", "750100125")
    assert not staff.may_read_transfer("94", "940100043", "940000000")
    assert staff.may_move_transfer("94", "940100043", "750100125", accept_or_refuse=True)
    assert not staff.may_move_transfer("94", "750100125", "940100043", accept_or_refuse=True)
    assert not staff.may_move_transfer("94", "940100043", "750100125", accept_or_refuse=False)
    assert Access("ars", "region:11").may_read_transfer("94", "a", "b")
    assert not Access("regulator", "samu:75").may_read_transfer("94", "a", "b")
    assert Access("zone", "zone:paris").may_read_transfer("94", "a", "b")
    assert not Access("zone", "zone:paris").may_request_transfer("94")


def test_transfer_moves() -> None:
    assert may_move(TransferStatus.REQUESTED, TransferStatus.ACCEPTED)
    assert may_move(TransferStatus.ACCEPTED, TransferStatus.IN_TRANSIT)
    assert may_move(TransferStatus.IN_TRANSIT, TransferStatus.ARRIVED)
    assert not may_move(TransferStatus.REQUESTED, TransferStatus.ARRIVED)
    assert not may_move(TransferStatus.IN_TRANSIT, TransferStatus.CANCELLED)
    assert not may_move(TransferStatus.ARRIVED, TransferStatus.REQUESTED)
    finals = {s for s in TransferStatus if is_final(s)}
    assert finals == {TransferStatus.REFUSED, TransferStatus.ARRIVED, TransferStatus.CANCELLED}
    assert set(TRANSITIONS) == set(TransferStatus)


def test_scope_names() -> None:
    assert Scope("samu", "75").name == "SAMU 75 (Paris)"
    assert IDF.name == "Île-de-France" and ZONE_PARIS.name == "Zone Paris"


@given(st.text(max_size=30))
def test_parse_scope_parses_or_refuses(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError:
        return
    assert str(scope) == text.strip()
    assert scope.ancestry()[-1] == NATIONAL_SCOPE


@given(st.sampled_from(sorted(departements())), st.sampled_from(sorted(departements())))
def test_a_samu_sees_another_samus_messages_only_if_it_is_itself(a: str, b: str) -> None:
    viewer, target = parse_scope(f"samu:{a}"), parse_scope(f"samu:{b}")
    assert may_see(viewer, target) == (a == b)
    assert may_see(viewer, target.parent or NATIONAL_SCOPE) == (
        departements()[a][1] == departements()[b][1]
    )
