"""People and machines: accounts with a password and a TOTP code, sessions in encrypted
cookies, CSRF, the sign-in pages, handler guards, API keys, and the account commands.

- ``kit.auth.users``: ``UserStore`` (argon2id passwords, encrypted TOTP secrets, replay refusal);
- ``kit.auth.apikeys``: ``ApiKeyStore``, ``require_api_key``, ``Principal``;
- ``kit.auth.sessions``: the cookie storage, ``SessionPolicy``, the CSRF check;
- ``kit.auth.people``: ``Accounts``, ``People`` (sign-in pages), ``require_user``;
- ``kit.auth.commands``: ``users ...`` and ``apikeys ...`` for a service's command line.
"""

from kit.auth.apikeys import ApiKey, ApiKeyStore, Principal, require_api_key, setup_api_keys
from kit.auth.people import (
    Accounts,
    LoginLimits,
    People,
    optional_user,
    require_user,
    safe_next,
)
from kit.auth.sessions import SessionPolicy, check_csrf, csrf_field, csrf_token
from kit.auth.users import AccountError, BadCredentials, CodeCheck, Enrolment, User, UserStore

__all__ = [
    "AccountError",
    "Accounts",
    "ApiKey",
    "ApiKeyStore",
    "BadCredentials",
    "CodeCheck",
    "Enrolment",
    "LoginLimits",
    "People",
    "Principal",
    "SessionPolicy",
    "User",
    "UserStore",
    "check_csrf",
    "csrf_field",
    "csrf_token",
    "optional_user",
    "require_api_key",
    "require_user",
    "safe_next",
    "setup_api_keys",
]
