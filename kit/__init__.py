"""The shared service kit: what every service of the project uses, written once.

- ``kit.http``: the HTTP error hierarchy, the error guard (JSON 4xx bodies, never a
  traceback), the JSON body reader with exact field sets and size limits, the JSON 404/405
  fallback and the index page;
- ``kit.settings``: one typed, frozen settings object per service from defaults, its
  ``<PREFIX>_*`` environment variables and command-line flags, secrets masked when printed;
- ``kit.metrics``: Prometheus request metrics that cost plain arithmetic per request;
- ``kit.ratelimit``: token buckets with an atomic take;
- people's authentication (passwords, TOTP, sessions, CSRF, API keys), the audit log,
  relational storage (SQLAlchemy, Alembic), events and the notification outbox: see
  ``docs/kit.md``.

The kit imports no other package of the project (checked by import-linter in CI).
"""
