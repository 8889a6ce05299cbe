"""HL7 v2 acknowledgements (original mode): the ``ACK`` a lab's system waits for after each
message it sends over MLLP or HTTP. Pure: no I/O.

``MSA-1`` is ``AA`` (accepted: stored, or recognised as already stored), ``AE`` (application
error: the message was read but refused, with the reason in ``MSA-3`` and ``ERR``) or ``AR``
(rejected: not an HL7 message we can read, or not one we take). ``MSA-2`` echoes the message
control id (``MSH-10``); the ACK's ``MSH`` swaps the sender and receiver of the message and
keeps its version and processing id. Reasons are escaped (``\\F\\``, ``\\S\\``...) and cut to
80 characters in ``MSA-3``; ``ERR-8`` holds up to 250.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

SEGMENT_END = "\r"
DEFAULT_SEPARATORS = "|^~\\&"


class AckCode(StrEnum):
    ACCEPTED = "AA"
    ERROR = "AE"
    REJECTED = "AR"


@dataclass(frozen=True, slots=True)
class Header:
    """What an ACK needs of the message's ``MSH`` (empty strings where it lacks them)."""

    field: str = "|"
    encoding: str = "^~\\&"
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    message_type: str = ""
    control_id: str = ""
    processing_id: str = "P"
    version: str = "2.5"


def read_header(data: bytes) -> Header | None:
    """The ``MSH`` of a message (the first segment), or None if it does not start with one.
    Batch files (``FHS``/``BHS``) are answered by their first ``MSH``."""
    text = data.decode("latin-1").lstrip("\ufeff\r\n\x0b ")
    for segment in text.replace("\r\n", "\r").replace("\n", "\r").split("\r"):
        if segment.startswith("MSH") and len(segment) >= 8:
            return _header(segment)
        if not segment.startswith(("FHS", "BHS")) and segment.strip():
            return None
    return None


def _header(segment: str) -> Header | None:
    sep = segment[3]
    if sep.isalnum() or sep.isspace():
        return None
    fields = segment.split(sep)
    encoding = fields[1] if len(fields) > 1 else ""
    if not 1 <= len(encoding) <= 5:
        return None

    def at(n: int) -> str:
        # MSH-1 is the separator itself: MSH-n is fields[n - 1]
        return fields[n - 1] if len(fields) >= n else ""

    return Header(
        field=sep,
        encoding=encoding,
        sending_app=at(3),
        sending_facility=at(4),
        receiving_app=at(5),
        receiving_facility=at(6),
        message_type=at(9),
        control_id=at(10)[:199],
        processing_id=at(11) or "P",
        version=at(12) or "2.5",
    )


def escape(text: str, header: Header) -> str:
    """``text`` with the message's delimiters escaped (HL7 v2.5 §2.7)."""
    esc = header.encoding[2] if len(header.encoding) > 2 else "\\"
    component = header.encoding[0] if header.encoding else "^"
    repetition = header.encoding[1] if len(header.encoding) > 1 else "~"
    sub = header.encoding[3] if len(header.encoding) > 3 else "&"
    out = []
    for c in text.replace("\r", " ").replace("\n", " "):
        if c == esc:
            out.append(f"{esc}E{esc}")
        elif c == header.field:
            out.append(f"{esc}F{esc}")
        elif c == component:
            out.append(f"{esc}S{esc}")
        elif c == repetition:
            out.append(f"{esc}R{esc}")
        elif c == sub:
            out.append(f"{esc}T{esc}")
        else:
            out.append(c)
    return "".join(out)


def build_ack(
    header: Header | None,
    code: AckCode,
    now: datetime,
    ack_id: str,
    reason: str = "",
    *,
    app: str = "SIDEP",
    facility: str = "SIDEP",
) -> bytes:
    """The ACK of a message whose ``MSH`` is ``header`` (None: unreadable), as bytes with
    ``\\r`` between segments (UTF-8: the labs' messages are Latin-1 or UTF-8, and the reasons
    are plain ASCII)."""
    h = header or Header()
    f, enc = h.field, h.encoding
    trigger = _trigger(h)
    msh = f.join(
        [
            "MSH",
            enc,
            app,
            facility,
            h.sending_app,
            h.sending_facility,
            now.strftime("%Y%m%d%H%M%S"),
            "",
            f"ACK{enc[0] if enc else '^'}{trigger}{enc[0] if enc else '^'}ACK"
            if trigger
            else "ACK",
            ack_id,
            h.processing_id,
            h.version,
        ]
    )
    msa = f.join(["MSA", code.value, h.control_id, escape(reason, h)[:80]])
    segments = [msh, msa]
    if code is not AckCode.ACCEPTED:
        # ERR-3 HL7 error code (table 0357), ERR-4 severity, ERR-8 user message
        error = (
            "207^Application internal error^HL70357"
            if code is AckCode.ERROR
            else ("200^Unsupported message type^HL70357")
        )
        if enc and enc[0] != "^":
            error = error.replace("^", enc[0])
        segments.append(f.join(["ERR", "", "", error, "E", "", "", "", escape(reason, h)[:250]]))
    return (SEGMENT_END.join(segments) + SEGMENT_END).encode("utf-8")


def _trigger(h: Header) -> str:
    """The trigger event of the message type (``ORU^R01`` -> ``R01``)."""
    component = h.encoding[0] if h.encoding else "^"
    parts = h.message_type.split(component)
    return parts[1] if len(parts) > 1 and parts[1].isalnum() else ""


def is_oru(header: Header) -> bool:
    """Whether the message is an observation result (``ORU^R01`` or ``ORU^R30``...)."""
    component = header.encoding[0] if header.encoding else "^"
    return header.message_type.split(component)[0] == "ORU"
