"""The submission-code service: organisations issue single-use codes, people and machines of
theirs ask for them, the ROBERT server uses them.

Layers, as ``protocol/`` versus ``server/``: ``links`` (signed deep links) and ``export`` are
pure; ``store`` keeps organisations and codes in the service's database with the audit log;
``service`` is the domain; ``web`` (machines' API), ``pages`` and ``admin`` (people's pages),
``handout`` (the patient's sheet) and ``commands`` are adapters over it. See docs/codes.md.
"""
