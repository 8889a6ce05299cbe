"""EBID and ECC: round trips, batch against scalar, epoch checks, country codes."""

import pytest

from protocol.ebid import (
    FRANCE,
    check_country,
    check_ebid_epoch,
    decrypt_ebid,
    decrypt_ebids,
    decrypt_ecc,
    make_ebid,
    make_ebids,
    make_ecc,
    make_eccs,
)
from protocol.errors import BadLength, EpochMismatch, UnknownCountry
from protocol.types import EbidKey, FederationKey, IdA


def test_ebid_round_trip(k_s: EbidKey, owner: IdA) -> None:
    ebid = make_ebid(k_s, 12345, owner)
    assert len(ebid) == 8
    assert decrypt_ebid(k_s, ebid) == (12345, owner)
    assert check_ebid_epoch(decrypt_ebid(k_s, ebid), 12345) == owner


def test_ebid_epoch_mismatch(k_s: EbidKey, owner: IdA) -> None:
    with pytest.raises(EpochMismatch):
        check_ebid_epoch(decrypt_ebid(k_s, make_ebid(k_s, 7, owner)), 8)


def test_wrong_day_key_does_not_give_the_epoch(k_s: EbidKey, owner: IdA) -> None:
    other = EbidKey(bytes(24))
    assert decrypt_ebid(other, make_ebid(k_s, 99, owner))[0] != 99


def test_batch_matches_scalar(k_s: EbidKey, owner: IdA) -> None:
    epochs = list(range(96 * 3, 96 * 4))
    ebids = make_ebids(k_s, epochs, owner)
    assert ebids == [make_ebid(k_s, e, owner) for e in epochs]
    assert decrypt_ebids(k_s, ebids) == [(e, owner) for e in epochs]


def test_epoch_must_fit_24_bits(k_s: EbidKey, owner: IdA) -> None:
    with pytest.raises(ValueError):
        make_ebid(k_s, 1 << 24, owner)


def test_ecc_round_trip_and_batch(k_s: EbidKey, k_g: FederationKey, owner: IdA) -> None:
    ebids = make_ebids(k_s, range(10), owner)
    eccs = make_eccs(k_g, ebids, FRANCE)
    assert eccs == [make_ecc(k_g, e, FRANCE) for e in ebids]
    assert all(decrypt_ecc(k_g, e, c) == FRANCE for e, c in zip(ebids, eccs, strict=True))


def test_ecc_bad_lengths(k_g: FederationKey) -> None:
    with pytest.raises(BadLength):
        decrypt_ecc(k_g, bytes(7), b"\x00")


def test_countries() -> None:
    assert check_country(FRANCE, FRANCE) is True
    assert check_country(0x31, FRANCE, frozenset({0x31})) is False
    with pytest.raises(UnknownCountry):
        check_country(0x99, FRANCE)


def test_vectorised_plaintexts_match_the_layout(owner: IdA) -> None:
    from protocol.ebid import ebid_plaintext, ebid_plaintexts

    epochs = range(2**24 - 5, 2**24)
    assert ebid_plaintexts(owner, epochs) == b"".join(ebid_plaintext(e, owner) for e in epochs)
    assert ebid_plaintexts(owner, range(0)) == b""
    with pytest.raises(ValueError):
        ebid_plaintexts(owner, range(2**24 - 1, 2**24 + 1))
