"""Submission codes for health authorities: issuers, signed deep links, QR codes, audit.

Layers, as in ``protocol/`` versus ``server/``: ``links`` and ``apikeys`` are pure functions
(no I/O), ``store`` keeps organisations and the audit log beside the main store, ``issuer`` is
the domain service, and ``web`` / ``cli`` are thin adapters over it.
"""
