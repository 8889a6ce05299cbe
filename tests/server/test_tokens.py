"""The signed tokens, verified by an independent decoder (joserfc) against the JWKS."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.jwk import ECKey, KeySet

from server.tokens import TokenLifetimes, TokenSigner, jwks

NOW = 1_772_441_207  # 2026-03-02T09:06:47Z


@pytest.fixture
def signer() -> TokenSigner:
    return TokenSigner.throwaway(TokenLifetimes(report=300, analytics=360 * 60, declaration=86400))


def keys_of(signer: TokenSigner) -> KeySet:
    return KeySet.import_key_set(jwks([signer._key.public_key()]))


def test_kid_is_the_rfc7638_thumbprint(signer: TokenSigner) -> None:
    jwk = jwks([signer._key.public_key()])["keys"][0]
    assert ECKey.import_key(jwk).thumbprint() == jwk["kid"] == signer.kid
    assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("EC", "P-256", "ES256", "sig")
    assert "d" not in jwk  # the private part is never published


def test_report_token_verifies_and_expires(signer: TokenSigner) -> None:
    token = jwt.decode(signer.report_validation(NOW), keys_of(signer), algorithms=["ES256"])
    assert token.header == {"alg": "ES256", "kid": signer.kid, "typ": "JWT"}
    claims = token.claims
    assert (claims["iss"], claims["iat"], claims["exp"]) == ("robert-server", NOW, NOW + 300)
    assert len(claims["jti"]) == 32
    ids = {
        jwt.decode(signer.report_validation(NOW), keys_of(signer)).claims["jti"] for _ in range(5)
    }
    assert len(ids) == 5
    lengths = {len(signer.report_validation(NOW + i)) for i in range(50)}
    assert len(lengths) == 1  # a dummy's token cannot stand out by its size


def test_analytics_token_is_the_same_for_everyone_within_a_minute(signer: TokenSigner) -> None:
    minute = NOW - NOW % 60
    first = signer.analytics(minute + 1)
    assert signer.analytics(minute + 59) == first
    assert signer.analytics(minute + 60) != first
    claims = jwt.decode(first, keys_of(signer), algorithms=["ES256"]).claims
    assert (claims["iat"], claims["exp"]) == (minute, minute + 360 * 60 + 60)


def test_declaration_token_id_is_stable_per_episode(signer: TokenSigner) -> None:
    keys = keys_of(signer)

    def claims(owner: bytes, episode: int, now: int) -> dict[str, object]:
        token = signer.declaration(now, owner, episode, 3_981_000_000, 3_980_880_000)
        return jwt.decode(token, keys, algorithms=["ES256"]).claims

    one = claims(b"\x01" * 5, 700, NOW)
    assert one["iss"] == "tac" and one["exp"] == NOW + 86400
    assert one["notificationDateTimestamp"] == 3_981_000_000
    assert one["lastContactDateTimestamp"] == 3_980_880_000
    assert claims(b"\x01" * 5, 700, NOW + 999)["jti"] == one["jti"]
    assert claims(b"\x01" * 5, 701, NOW)["jti"] != one["jti"]
    assert claims(b"\x02" * 5, 700, NOW)["jti"] != one["jti"]


def test_another_key_does_not_verify(signer: TokenSigner) -> None:
    stranger = TokenSigner.throwaway()
    with pytest.raises(BadSignatureError):
        jwt.decode(stranger.report_validation(NOW), keys_of(signer).keys[0], algorithms=["ES256"])


def test_robert_keys_jwks_prints_the_published_key(tmp_path: Path) -> None:
    env = {"ROBERT_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    robert = [sys.executable, "-m", "cli.main"]
    subprocess.run([*robert, "keys", "generate"], env=env, check=True, capture_output=True)
    done = subprocess.run([*robert, "keys", "jwks"], env=env, check=True, capture_output=True)
    printed = json.loads(done.stdout)
    from server.keys import ServerKeys

    keys = ServerKeys(tmp_path / "keys")
    keys.reload()
    assert printed == keys.jwks()
    signer = TokenSigner(keys.token_private, b"k" * 32)
    token = signer.report_validation(NOW)
    assert (
        jwt.decode(token, KeySet.import_key_set(printed), algorithms=["ES256"]).claims["iat"] == NOW
    )
