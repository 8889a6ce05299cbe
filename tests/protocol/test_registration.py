"""Registration key agreement: both sides derive the same K_A and K_EA."""

import hashlib
import hmac
import random

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.errors import BadFormat
from protocol.registration import (
    agree,
    derive_keys,
    load_public_spki,
    private_key_from_random,
    public_key_spki,
)


def test_both_sides_derive_the_same_keys() -> None:
    rng = random.Random(7)
    server = private_key_from_random(rng.randbytes)
    phone = private_key_from_random(rng.randbytes)
    phone_keys = agree(phone, public_key_spki(server))
    server_keys = agree(server, public_key_spki(phone))
    assert phone_keys == server_keys
    k_a, k_ea = phone_keys
    assert k_a != k_ea


def test_derivation_labels_match_the_reference() -> None:
    z = bytes(range(32))
    k_a, k_ea = derive_keys(z)
    assert k_a.material == hmac.new(z, b"mac", hashlib.sha256).digest()
    assert k_ea.material == hmac.new(z, b"tuples", hashlib.sha256).digest()


def test_random_source_is_deterministic() -> None:
    a = private_key_from_random(random.Random(1).randbytes)
    b = private_key_from_random(random.Random(1).randbytes)
    assert public_key_spki(a) == public_key_spki(b)


def test_spki_is_der_subject_public_key_info() -> None:
    key = private_key_from_random(random.Random(2).randbytes)
    der = public_key_spki(key)
    assert der[0] == 0x30 and len(der) == 91  # SEQUENCE, P-256 uncompressed SPKI
    assert load_public_spki(der).public_numbers() == key.public_key().public_numbers()


@pytest.mark.parametrize("der", [b"", b"\x30\x00", bytes(91)])
def test_garbage_public_keys_are_refused(der: bytes) -> None:
    with pytest.raises(BadFormat):
        load_public_spki(der)


def test_other_curves_are_refused() -> None:
    other = ec.generate_private_key(ec.SECP384R1())
    with pytest.raises(BadFormat):
        load_public_spki(public_key_spki(other))
