"""Known answers of the message layer (``tests/vectors/robert_kat.json``), each checked two
ways: the protocol core gives them, and an independent recomputation from the specification
with ``cryptography`` and ``hmac`` gives them too [robert.md: Registration, EBID and ECC,
HELLO message, Authenticated requests]."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from protocol import skinny
from tests.vectors.make_robert_kat import vectors

KAT = json.loads((Path(__file__).parents[1] / "vectors" / "robert_kat.json").read_text())


def test_the_code_gives_the_known_answers() -> None:
    assert vectors() == KAT


def test_key_agreement_from_the_specification() -> None:
    phone = ec.derive_private_key(int(KAT["phone_private_scalar"], 16), ec.SECP256R1())
    server = ec.derive_private_key(int(KAT["server_private_scalar"], 16), ec.SECP256R1())
    shared = server.exchange(ec.ECDH(), phone.public_key())  # x coordinate, 32 bytes
    assert hmac.digest(shared, b"mac", "sha256").hex() == KAT["k_a"]
    assert hmac.digest(shared, b"tuples", "sha256").hex() == KAT["k_ea"]


def test_ebid_ecc_hello_and_request_mac_from_the_specification() -> None:
    plain = KAT["epoch"].to_bytes(3, "big") + bytes.fromhex(KAT["id_a"])
    ebid = skinny.encrypt(bytes.fromhex(KAT["k_s"]), plain)  # vectors: skinny64.json
    assert ebid.hex() == KAT["ebid"]
    aes = Cipher(algorithms.AES(bytes.fromhex(KAT["k_g"])), modes.ECB()).encryptor()
    pad = aes.update(ebid + bytes(8)) + aes.finalize()
    ecc = bytes([pad[0] ^ KAT["country"]])
    assert ecc.hex() == KAT["ecc"]
    k_a = bytes.fromhex(KAT["k_a"])
    time16 = (KAT["now_ntp"] & 0xFFFF).to_bytes(2, "big")
    mac = hmac.digest(k_a, b"\x01" + ecc + ebid + time16, "sha256")[:5]
    assert (ecc + ebid + time16 + mac).hex() == KAT["hello"]
    time32 = (KAT["now_ntp"] & 0xFFFF_FFFF).to_bytes(4, "big")
    message = b"\x02" + ebid + KAT["epoch"].to_bytes(4, "big") + time32
    assert hmac.new(k_a, message, hashlib.sha256).hexdigest() == KAT["status_mac"]
