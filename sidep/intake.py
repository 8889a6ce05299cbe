"""The one place that reaches the parsers (``sidep.formats``): detect a payload's format and
parse it into a ``Parsed``, never raising for what a lab sent.

Every transport (HTTP, MLLP, the ``ingest`` command, the antigen form aside) goes through
``parse``. The parsers are found by name when first used, so that this module, and the
transports tested with parsers of their own (``Intake(parsers=...)``), do not depend on them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping

from kit.jobs import describe_failure
from sidep.model import Parsed, Refusal, SourceFormat

log = logging.getLogger("sidep.intake")

Parser = Callable[[bytes, str], Parsed]
"""``parse(data, where) -> Parsed``: what every parser of ``sidep.formats`` offers."""
Detector = Callable[[bytes], SourceFormat]

MODULES = {
    SourceFormat.HL7: "sidep.formats.hl7",
    SourceFormat.FHIR: "sidep.formats.fhir",
    SourceFormat.HPRIM: "sidep.formats.hprim",
    SourceFormat.CSV: "sidep.formats.csvfile",
}
MAX_BYTES = 64 * 1024 * 1024
"""A payload larger than this is refused unread."""


def _parser(fmt: SourceFormat) -> Parser:
    module = importlib.import_module(MODULES[fmt])
    parser: Parser = module.parse
    return parser


def _detector() -> Detector:
    module = importlib.import_module("sidep.formats.detect")
    detector: Detector = module.detect
    return detector


class Intake:
    """Parsers by format, and a format detector (default: ``sidep.formats``)."""

    def __init__(
        self,
        parsers: Mapping[SourceFormat, Parser] | None = None,
        detector: Detector | None = None,
    ) -> None:
        self._parsers = dict(parsers) if parsers is not None else None
        self._detector = detector

    def parser(self, fmt: SourceFormat) -> Parser | None:
        if self._parsers is not None:
            return self._parsers.get(fmt)
        if fmt not in MODULES:
            return None
        try:
            return _parser(fmt)
        except ImportError:
            return None

    def detect(self, data: bytes) -> SourceFormat | None:
        try:
            return (self._detector or _detector())(data)
        except ImportError:
            return None
        except ValueError:
            return None

    def parse(self, data: bytes, where: str, fmt: SourceFormat | None = None) -> Parsed:
        """``data`` parsed as ``fmt`` (None: detected); a refusal, never an exception."""
        if len(data) > MAX_BYTES:
            return refused(where, f"larger than {MAX_BYTES // (1024 * 1024)} MiB")
        if not data.strip():
            return refused(where, "empty")
        fmt = fmt or self.detect(data)
        if fmt is None:
            return refused(where, "unknown format (not HL7 v2, FHIR, HPRIM or the CSV file)")
        parser = self.parser(fmt)
        if parser is None:
            return refused(where, f"no {fmt} parser in this installation")
        try:
            return parser(data, where)
        except Exception as exc:  # a parser bug must not lose the message silently
            log.error("parser %s failed on %s: %s", fmt, where, describe_failure(exc))
            return refused(where, f"unreadable {fmt} ({type(exc).__name__})")


def refused(where: str, reason: str) -> Parsed:
    """A ``Parsed`` with one refusal and nothing else."""
    return Parsed(refusals=(Refusal(where, reason),))
