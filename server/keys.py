"""The server's keys on disk: K_S per UTC day, K_G, the P-256 registration key pair, and the
P-256 key that signs the tokens of the apps' contract.

Layout of the keys directory (mode 0700, files 0600)::

    kg.key                 K_G, 32 raw bytes (federation key, AES-256)
    ecdh-private.pem       the server's P-256 private key, PKCS#8 PEM
    token-es256.pem        the token signing key (ES256, P-256), PKCS#8 PEM
    ks/YYYY-MM-DD.key      K_S of that UTC day, 24 raw bytes (SKINNY-64/192)

The token key's public half is published as a JSON Web Key Set (``jwks``): at
``/.well-known/jwks.json`` and by ``robert keys jwks``.

Keys are created with O_EXCL-style atomic links, so several server processes starting together
agree on one key per day. Key material is never logged; ``repr`` shows counts only. This class is
the "HSM-shaped" seam: another implementation could keep the keys in a hardware module.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from protocol.auth import b64encode
from protocol.errors import KeyUnavailable
from protocol.registration import CURVE, public_key_spki
from protocol.types import EbidKey, FederationKey
from server.tokens import jwks


def _write_once(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data`` unless it exists; atomic against concurrent writers."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.chmod(tmp, 0o600)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        os.unlink(tmp)


ECDH_FILE = "ecdh-private.pem"
TOKEN_FILE = "token-es256.pem"


def _new_p256_pem() -> bytes:
    """A fresh P-256 private key, PKCS#8 PEM."""
    return ec.generate_private_key(CURVE).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_p256(path: Path) -> ec.EllipticCurvePrivateKey:
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, ec.EllipticCurvePrivateKey) or private.curve.name != CURVE.name:
        raise ValueError(f"{path.name} is not a P-256 private key")
    return private


class ServerKeys:
    """The keys a server process holds in memory, loaded from (and created in) a directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._daily: dict[date, EbidKey] = {}
        self.k_g: FederationKey
        self.ecdh_private: ec.EllipticCurvePrivateKey
        self.token_private: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"ServerKeys({str(self.directory)!r}, {len(self._daily)} daily keys)"

    @classmethod
    def open(
        cls, directory: Path, today: date, ahead_days: int, retention_days: int, create: bool = True
    ) -> ServerKeys:
        """Load the keys, creating what is missing if ``create`` (else raise FileNotFoundError)."""
        keys = cls(directory)
        if create:
            keys.generate(today, ahead_days, retention_days)
        keys.reload()
        return keys

    def generate(self, today: date, ahead_days: int, retention_days: int) -> list[date]:
        """Create missing keys (K_G, ECDH pair, K_S from today to today + ahead); drop old K_S.

        Returns the days whose K_S was created by this call.
        """
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        _write_once(self.directory / "kg.key", secrets.token_bytes(FederationKey.SIZE))
        for name in (ECDH_FILE, TOKEN_FILE):
            if not (self.directory / name).exists():
                _write_once(self.directory / name, _new_p256_pem())
        created = []
        for offset in range(ahead_days + 1):
            day = today + timedelta(days=offset)
            path = self._ks_path(day)
            if not path.exists():
                _write_once(path, secrets.token_bytes(EbidKey.SIZE))
                created.append(day)
        self.drop_older_than(today - timedelta(days=retention_days))
        return created

    def drop_older_than(self, oldest: date) -> None:
        """Delete K_S files of days before ``oldest``: EBIDs of those days can no longer be
        reported, and forgetting the key makes them unlinkable for good."""
        for path in (self.directory / "ks").glob("*.key"):
            with contextlib.suppress(ValueError):
                if date.fromisoformat(path.stem) < oldest:
                    path.unlink(missing_ok=True)

    def reload(self) -> None:
        """Read every key file into memory."""
        self.k_g = FederationKey((self.directory / "kg.key").read_bytes())
        self.ecdh_private = _load_p256(self.directory / ECDH_FILE)
        self.token_private = _load_p256(self.directory / TOKEN_FILE)
        daily = {}
        for path in (self.directory / "ks").glob("*.key"):
            with contextlib.suppress(ValueError):
                daily[date.fromisoformat(path.stem)] = EbidKey(path.read_bytes())
        self._daily = daily

    def _ks_path(self, day: date) -> Path:
        return self.directory / "ks" / f"{day.isoformat()}.key"

    def key_of_day(self, day: date) -> EbidKey:
        """K_S of a UTC day; KeyUnavailable if it was dropped or never made."""
        try:
            return self._daily[day]
        except KeyError:
            raise KeyUnavailable(f"no K_S for {day.isoformat()}") from None

    def has_day(self, day: date) -> bool:
        """True if K_S of ``day`` is loaded."""
        return day in self._daily

    @property
    def days(self) -> list[date]:
        """Days whose K_S is loaded, oldest first."""
        return sorted(self._daily)

    def public_key_spki(self) -> bytes:
        """The server's ECDH public key, X.509 SubjectPublicKeyInfo DER."""
        return public_key_spki(self.ecdh_private)

    def public_key_b64(self) -> str:
        """The public key as phones embed it: base64 of the SubjectPublicKeyInfo."""
        return b64encode(self.public_key_spki())

    def jwks(self) -> dict[str, Any]:
        """The token key's public half as a JSON Web Key Set."""
        return jwks([self.token_private.public_key()])
