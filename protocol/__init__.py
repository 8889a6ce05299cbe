"""The ROBERT proximity-tracing protocol (v1.1), as pure functions without I/O.

Read it beside ``shared/docs/robert.md`` and ``docs/protocol.md``: every module cites the
section of the specification it implements. Nothing here opens a socket or a file, reads a
clock or draws randomness by itself; callers pass times and random sources in.
"""
