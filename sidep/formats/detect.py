"""Which format a file is in (``robert sidep ingest --format auto``), and reading any of them.

The first bytes decide, after a UTF-8 byte-order mark, blanks and an MLLP start byte:

- ``MSH|``, ``FHS|``, ``BHS|`` (any field separator): HL7 v2;
- ``H`` + a separator + four delimiters (``H|~^\\&``): HPRIM Santé;
- ``{``: FHIR JSON (a ``Bundle``);
- the exact CSV header line: the flat CSV file.
"""

from __future__ import annotations

from collections.abc import Callable

from sidep.formats import csvfile, fhir, hl7, hprim
from sidep.formats.common import too_big
from sidep.model import Parsed, Refusal, SourceFormat

_HEADER = csvfile.HEADER.encode()


def detect(data: bytes) -> SourceFormat | None:
    """The format of ``data``, None when it is none we read."""
    head = data[:4096].removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n\x0b")
    if head[:3] in {b"MSH", b"FHS", b"BHS"} and len(head) > 3 and not head[3:4].isalnum():
        return SourceFormat.HL7
    delimiters = head[1:6]
    if (
        head[:1] == b"H"
        and len(delimiters) == 5
        and len(set(delimiters)) == 5
        and all(not chr(c).isalnum() and chr(c) not in " \r\n" for c in delimiters)
    ):
        return SourceFormat.HPRIM
    if head[:1] == b"{":
        return SourceFormat.FHIR
    if head.split(b"\n", 1)[0].rstrip(b"\r") == _HEADER:
        return SourceFormat.CSV
    return None


Parser = Callable[[bytes, str, str | None], Parsed]


def _csv(data: bytes, where: str, lab_finess: str | None) -> Parsed:
    return csvfile.parse(data, where)


PARSERS: dict[SourceFormat, Parser] = {
    SourceFormat.HL7: hl7.parse,
    SourceFormat.FHIR: fhir.parse,
    SourceFormat.HPRIM: hprim.parse,
    SourceFormat.CSV: _csv,
}


def parse_any(
    data: bytes, where: str, fmt: SourceFormat | None = None, lab_finess: str | None = None
) -> Parsed:
    """Read ``data`` in format ``fmt`` (detected when None). ``lab_finess`` is the FINESS of the
    authenticated sender, used when a message does not carry its lab's. Never raises."""
    big = too_big(data)
    if big is not None:
        return Parsed(refusals=(Refusal(where, big),))
    if fmt is None:
        fmt = detect(data)
        if fmt is None:
            return Parsed(
                refusals=(Refusal(where, "not a format we read (HL7 v2, FHIR, HPRIM or CSV)"),)
            )
    parser = PARSERS.get(fmt)
    if parser is None:
        return Parsed(refusals=(Refusal(where, f"format {fmt} is not read from files"),))
    try:
        return parser(data, where, lab_finess)
    except Exception as error:  # the last guard: a parser bug refuses, not crashes
        return Parsed(refusals=(Refusal(where, f"unreadable input ({type(error).__name__})"),))
