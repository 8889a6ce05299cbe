"""API keys of issuers: ``rk1.<org>.<43 base64url chars>``, 32 random bytes, stored hashed.

A plain SHA-256 is enough because the key has 256 bits of entropy (no dictionary to try); the
organisation name inside the key selects the record, then the hashes are compared in constant
time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from server.codes.errors import AuthFailed
from server.codes.model import ORG_NAME

PREFIX = "rk1"


def new_api_key(org: str) -> str:
    """A fresh key for ``org``; shown once, only its hash is kept."""
    secret = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()
    return f"{PREFIX}.{org}.{secret}"


def hash_api_key(key: str) -> bytes:
    """What the store keeps of a key."""
    return hashlib.sha256(key.encode()).digest()


def org_of_key(key: str) -> str:
    """The organisation a key claims to belong to; AuthFailed if it is not shaped like a key."""
    parts = key.strip().split(".")
    if len(parts) != 3 or parts[0] != PREFIX or not ORG_NAME.fullmatch(parts[1]):
        raise AuthFailed("not an API key")
    return parts[1]


def key_matches(key: str, key_hash: bytes) -> bool:
    """Constant-time comparison of a presented key with a stored hash."""
    return hmac.compare_digest(hash_api_key(key.strip()), key_hash)
