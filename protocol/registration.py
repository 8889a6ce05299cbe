"""Registration key agreement [robert.md: Registration].

The phone and the server run ECDH on NIST P-256, public keys travelling as X.509
SubjectPublicKeyInfo (DER, base64 in JSON). From the shared secret Z (the x coordinate, 32
bytes) both sides derive ``K_A = HMAC-SHA256(Z, "mac")`` and ``K_EA = HMAC-SHA256(Z, "tuples")``,
as the reference crypto service does, so a client written for it works with ours.
"""

from __future__ import annotations

import hmac
from hashlib import sha256

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.errors import BadFormat
from protocol.types import MacKey, RandomSource, TupleKey

CURVE = ec.SECP256R1()
_CURVE_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
KA_LABEL = b"mac"
KEA_LABEL = b"tuples"


def derive_keys(shared_secret: bytes) -> tuple[MacKey, TupleKey]:
    """(K_A, K_EA) from the ECDH shared secret."""
    k_a = hmac.new(shared_secret, KA_LABEL, sha256).digest()
    k_ea = hmac.new(shared_secret, KEA_LABEL, sha256).digest()
    return MacKey(k_a), TupleKey(k_ea)


def private_key_from_random(random: RandomSource) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key drawn from ``random`` (rejection sampling, so uniform in [1, n))."""
    while True:
        scalar = int.from_bytes(random(32), "big")
        if 0 < scalar < _CURVE_ORDER:
            return ec.derive_private_key(scalar, CURVE)


def public_key_spki(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    """X.509 SubjectPublicKeyInfo (DER) of a key: the wire form of ``clientPublicECDHKey``."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_spki(der: bytes) -> ec.EllipticCurvePublicKey:
    """Parse a SubjectPublicKeyInfo, accepting only a valid point on P-256."""
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise BadFormat("not a DER SubjectPublicKeyInfo") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != CURVE.name:
        raise BadFormat("public key is not on P-256")
    return key


def agree(
    own_private: ec.EllipticCurvePrivateKey, peer_public_spki: bytes
) -> tuple[MacKey, TupleKey]:
    """(K_A, K_EA) on either side: our private key, the other side's SubjectPublicKeyInfo."""
    peer = load_public_spki(peer_public_spki)
    return derive_keys(own_private.exchange(ec.ECDH(), peer))
