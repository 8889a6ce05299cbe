"""The signed tokens of the apps' contract: JWTs signed with ES256 (ECDSA on P-256, SHA-256).

Three kinds, each with an id (``jti``) and an expiry (``exp``), under the server's token key
(``server.keys``, published as JWKS at ``/.well-known/jwks.json`` and by ``robert keys jwks``):

* ``reportValidationToken``, in every successful report answer: the claim that this person
  reported a positive test (the iOS app fails without it, after its code is spent). Lives
  ``report_token_minutes`` (the reference: 5).
* ``declarationToken``, in a status answer at risk: for the health insurance's sick-leave
  declaration, with the notification time and the (blurred) last contact date, both NTP
  seconds as the reference has them. Its id is a keyed hash of the registration and its risk
  episode: the insurance can tell a declaration made twice, and nobody without the server's key
  can link it to anything else.
* ``analyticsToken``, in every status answer: lets the app send its analytics once. As in the
  reference, everyone asking within the same minute gets the same token (issued at the start of
  the minute), so it says nothing about who asked: it is signed once a minute, which also keeps
  ES256 off the status path's per-request cost.

Dummy reports (``server.service``) get a report token of the same size and cost signed under a
throw-away key that no verifier trusts.

The reference signed these with RS256 (``robert-server`` 1.x, ``jjwt``); ES256 gives smaller
tokens and one kind of key for everything the server signs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

ALGORITHM = "ES256"
REPORT_ISSUER = "robert-server"
DECLARATION_ISSUER = "tac"
"""The reference's issuer of declaration tokens (TousAntiCovid)."""


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(public_key: ec.EllipticCurvePublicKey) -> dict[str, str]:
    """The JWK of a P-256 public key (RFC 7518, 6.2.1), with its RFC 7638 thumbprint as
    ``kid``, ``use`` "sig" and ``alg`` ES256."""
    numbers = public_key.public_numbers()
    jwk = {
        "crv": "P-256",
        "kty": "EC",
        "x": _b64url(numbers.x.to_bytes(32, "big")),
        "y": _b64url(numbers.y.to_bytes(32, "big")),
    }
    # RFC 7638: SHA-256 of the required members, sorted, without whitespace.
    canonical = json.dumps(jwk, sort_keys=True, separators=(",", ":")).encode()
    return jwk | {
        "kid": _b64url(hashlib.sha256(canonical).digest()),
        "use": "sig",
        "alg": ALGORITHM,
    }


def jwks(public_keys: list[ec.EllipticCurvePublicKey]) -> dict[str, Any]:
    """A JSON Web Key Set (RFC 7517, section 5) of the given keys."""
    return {"keys": [public_jwk(key) for key in public_keys]}


@dataclass(frozen=True, slots=True)
class TokenLifetimes:
    """How long each kind of token is valid, in seconds."""

    report: int = 5 * 60
    analytics: int = 360 * 60
    declaration: int = 30 * 86_400


class TokenSigner:
    """Signs the three kinds of token under one key; the dummy signer under a throw-away one."""

    def __init__(
        self,
        private_key: ec.EllipticCurvePrivateKey,
        id_key: bytes,
        lifetimes: TokenLifetimes = TokenLifetimes(),
    ) -> None:
        self._key = private_key
        self._id_key = id_key
        self.kid = public_jwk(private_key.public_key())["kid"]
        self.lifetimes = lifetimes
        self._headers = {"kid": self.kid, "typ": "JWT"}
        self._analytics: tuple[int, str] | None = None

    def __repr__(self) -> str:
        return f"TokenSigner(kid={self.kid!r})"

    @classmethod
    def throwaway(cls, lifetimes: TokenLifetimes = TokenLifetimes()) -> TokenSigner:
        """A signer under a fresh key that is never published (dummy reports' tokens)."""
        return cls(ec.generate_private_key(ec.SECP256R1()), secrets.token_bytes(32), lifetimes)

    def _sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=ALGORITHM, headers=self._headers)

    def report_validation(self, now: int) -> str:
        """A report's ``reportValidationToken`` (``now``: Unix seconds). Every one has the same
        length: a random 128-bit id, fixed-width times."""
        return self._sign(
            {
                "iss": REPORT_ISSUER,
                "iat": now,
                "exp": now + self.lifetimes.report,
                "jti": secrets.token_hex(16),
            }
        )

    def declaration(
        self, now: int, owner: bytes, risk_episode: int, notified_ntp: int, last_contact_ntp: int
    ) -> str:
        """A status answer's ``declarationToken`` for the registration ``owner`` (its ID_A),
        at risk since the scoring of epoch ``risk_episode``."""
        episode = owner + risk_episode.to_bytes(8, "big", signed=True)
        jti = hmac.digest(self._id_key, b"declaration" + episode, "sha256")[:16].hex()
        return self._sign(
            {
                "iss": DECLARATION_ISSUER,
                "iat": now,
                "exp": now + self.lifetimes.declaration,
                "jti": jti,
                "notificationDateTimestamp": notified_ntp,
                "lastContactDateTimestamp": last_contact_ntp,
            }
        )

    def analytics(self, now: int) -> str:
        """A status answer's ``analyticsToken``: the same for everyone within one minute."""
        minute = now - now % 60
        cached = self._analytics
        if cached is not None and cached[0] == minute:
            return cached[1]
        token = self._sign(
            {
                "iss": REPORT_ISSUER,
                "iat": minute,
                # One more minute, so that a token handed out at the end of its minute still
                # has its whole lifetime (the reference does the same).
                "exp": minute + self.lifetimes.analytics + 60,
                "jti": secrets.token_hex(16),
            }
        )
        self._analytics = (minute, token)
        return token
