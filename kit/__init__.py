"""The shared service kit: what every service of the project uses, written once.

- ``kit.http``: the HTTP error hierarchy, the error guard (JSON 4xx bodies, never a
  traceback), the JSON body reader with exact field sets and size limits, the JSON 404/405
  fallback and the index page;
- ``kit.settings``: one typed, frozen settings object per service from defaults, its
  ``<PREFIX>_*`` environment variables and command-line flags, secrets masked when printed;
- ``kit.metrics``: Prometheus request metrics that cost plain arithmetic per request;
- ``kit.ratelimit``: token buckets with an atomic take;
- ``kit.db``, ``kit.schema``: a service's database (SQLite or PostgreSQL) and its migrations;
- ``kit.audit``: the append-only audit log;
- ``kit.auth``: people (password and TOTP, sessions, CSRF, sign-in pages, guards), API keys,
  account commands; ``kit.keys``: keys derived from the service secret;
- ``kit.web``, ``kit.i18n``: the shared page layout, forms, headers, French and English;
- ``kit.events``: the transactional outbox and its consumers; ``kit.notify``: e-mail, SMS,
  letters; ``kit.jobs``: periodic background jobs;
- ``kit.identity``: name normalisation, pseudonyms, NIR and INS;
- ``kit.testing``: pytest fixtures giving a fresh database on each backend.

See ``docs/kit.md``.

The kit imports no other package of the project (checked by import-linter in CI).
"""
