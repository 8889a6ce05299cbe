"""Regenerate ``robert_kat.json``: known answers of the ROBERT message layer for fixed inputs.

Run ``python -m tests.vectors.make_robert_kat`` only when a protocol rule deliberately changes;
``tests/protocol/test_kat.py`` then checks the code against the file, and recomputes every
HMAC, AES and ECDH step independently with ``cryptography`` and ``hmac`` so that the file is
not merely the code agreeing with itself. SKINNY-64/192 is checked against the published
vectors (``skinny64.json``), so it is taken from the code here.
"""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from protocol.auth import RequestKind, build_request
from protocol.ebid import make_ebid, make_ecc
from protocol.hello import build_hello
from protocol.registration import agree, public_key_spki
from protocol.types import EbidKey, FederationKey, MacKey, id_a

OUT = Path(__file__).with_name("robert_kat.json")


def vectors() -> dict[str, object]:
    """The known answers, computed with the protocol core."""
    phone = ec.derive_private_key(0x1234_5678_9ABC_DEF0, ec.SECP256R1())
    server = ec.derive_private_key(0x0FED_CBA9_8765_4321, ec.SECP256R1())
    k_a, k_ea = agree(server, public_key_spki(phone))
    k_s = EbidKey(bytes(range(24)))
    k_g = FederationKey(bytes(range(32, 64)))
    owner = id_a(bytes.fromhex("0102030405"))
    epoch, country, now_ntp = 0x01F3A0, 0x21, 3_900_000_123
    ebid = make_ebid(k_s, epoch, owner)
    ecc = make_ecc(k_g, ebid, country)
    hello = build_hello(MacKey(k_a.material), ecc, ebid, now_ntp).to_bytes()
    status = build_request(MacKey(k_a.material), RequestKind.STATUS, ebid, epoch, now_ntp)
    return {
        "comment": "tests/vectors/make_robert_kat.py; checked by tests/protocol/test_kat.py",
        "phone_private_scalar": "123456789abcdef0",
        "server_private_scalar": "0fedcba987654321",
        "k_a": k_a.material.hex(),
        "k_ea": k_ea.material.hex(),
        "k_s": k_s.material.hex(),
        "k_g": k_g.material.hex(),
        "id_a": "0102030405",
        "epoch": epoch,
        "country": country,
        "now_ntp": now_ntp,
        "ebid": ebid.hex(),
        "ecc": ecc.hex(),
        "hello": hello.hex(),
        "status_mac": status.mac.hex(),
    }


if __name__ == "__main__":
    OUT.write_text(json.dumps(vectors(), indent=2) + "\n")
    print(f"wrote {OUT}")
