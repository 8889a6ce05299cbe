"""The ``robert`` command: one subcommand group per service and tool, and ``robert dev``.

This is the only package that imports every service: it assembles their commands
(``cli.main``) and, for development, mounts them all in one process (``cli.dev``).
"""
