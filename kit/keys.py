"""Keys derived from a service's one secret, a key per purpose.

A service configures one secret (a ``ServiceSettings`` field declared ``secret=True``, e.g.
``SIDEP_SECRET``); the kit derives from it, with HKDF-SHA256 and a distinct ``info`` per
purpose, the key that encrypts session cookies and the key that encrypts TOTP secrets at rest.
Knowing one derived key tells nothing of the secret or of another derived key.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MIN_SECRET_LENGTH = 32

SESSION_COOKIES = "kit session cookies v1"
TOTP_SECRETS = "kit totp secrets v1"


class SecretError(ValueError):
    """A secret that cannot protect anything (empty or too short); one line."""


def check_secret(secret: str, name: str = "the service secret") -> None:
    """Refuse a secret shorter than 32 characters (``python -c 'import secrets;
    print(secrets.token_urlsafe(32))'`` makes a good one)."""
    if len(secret) < MIN_SECRET_LENGTH:
        raise SecretError(
            f"{name} must be at least {MIN_SECRET_LENGTH} characters "
            "(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )


def derive_key(secret: str, purpose: str, length: int = 32) -> bytes:
    """``length`` bytes for ``purpose`` from ``secret`` (HKDF-SHA256, no salt: the secret is
    already random; the purpose separates the keys)."""
    check_secret(secret)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode())
    return hkdf.derive(secret.encode())


def fernet_for(secret: str, purpose: str) -> Fernet:
    """A Fernet (AES-128-CBC + HMAC-SHA256, timestamped) keyed for ``purpose``."""
    return Fernet(base64.urlsafe_b64encode(derive_key(secret, purpose)))


def configured_or_kept_secret(configured: str, data_dir: str | Path, service: str) -> str:
    """A service's secret: ``configured`` (its ``<PREFIX>_SECRET``) if set, else the one kept
    in ``data_dir/<service>.secret`` (created on first use, ``load_or_create_secret``)."""
    if configured:
        return configured
    return load_or_create_secret(Path(data_dir) / f"{service}.secret")


def load_or_create_secret(path: Path) -> str:
    """The secret kept in ``path``, created on first use (mode 0600, 43 url-safe characters).

    For the embedded default: a service with no configured secret keeps one in its data
    directory, so sessions and encrypted TOTP secrets survive a restart without anyone having
    to make one up. Production configures ``<PREFIX>_SECRET`` instead."""
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        text = ""
    if text:
        check_secret(text, f"the secret in {path}")
        return text
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_urlsafe(32)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text + "\n")
    try:
        os.link(tmp, path)  # atomic, and never replaces a secret another process just wrote
    except FileExistsError:
        text = path.read_text().strip()
    finally:
        tmp.unlink()
    check_secret(text, f"the secret in {path}")
    return text
