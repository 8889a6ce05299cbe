"""HL7 v2 acknowledgements (original mode): the ``ACK`` a lab's system waits for after each
message it sends over MLLP or HTTP. Pure: no I/O.

``MSA-1`` is ``AA`` (accepted: stored, or recognised as already stored), ``AE`` (application
error: the message was read but refused, with the reason in ``MSA-3`` and ``ERR``) or ``AR``
(rejected: not an HL7 message we can read, or not one we take). ``MSA-2`` echoes the message
control id (``MSH-10``); the ACK's ``MSH`` swaps the sender and receiver of the message and
keeps its version and processing id. Reasons are escaped (``\\F\\``, ``\\S\\``...); ``MSA-3``
holds the reasons alone, cut to 80 characters, ``ERR-8`` up to 250 with where they were found.

Batches (HL7 v2.5 chapter 2, 2.10.3, batch protocol): a block that starts with ``FHS`` or
``BHS`` is a batch file. The standard leaves the choice of acknowledging every message or only
the refused ones to the sites; SI-DEP acknowledges EVERY message (a lab then knows each one's
fate without inferring it), in a response batch of the same shape: ``FHS`` (when the file had
one; ``FHS-12`` reference file control id = the file's ``FHS-11``), per batch a ``BHS``
(``BHS-12`` reference batch control id = its ``BHS-11``), the ACK of each of its messages in
order, and ``BTS`` (``BTS-1`` the number of ACK messages), then ``FTS`` (``FTS-1`` the number
of batches). The response's ``FHS``/``BHS`` swap the sender and receiver of the file's.
"""

from __future__ import annotations

import re
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
    ``FHS``/``BHS`` segments are skipped (batch files are answered with :func:`build_batch_ack`)."""
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
    summary: str | None = None,
) -> bytes:
    """The ACK of a message whose ``MSH`` is ``header`` (None: unreadable), as bytes with
    ``\\r`` between segments (UTF-8: the labs' messages are Latin-1 or UTF-8, and the reasons
    are plain ASCII). ``MSA-3`` holds ``summary`` (the reasons alone, without where they were
    found, which would take most of its 80 characters), ``ERR-8`` the whole ``reason``."""
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
    short = reason if summary is None else summary
    msa = f.join(["MSA", code.value, h.control_id, escape(short, h)[:80]])
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


# --- batches (HL7 v2.5 chapter 2, 2.10.3) -------------------------------------------------------
_SEGMENT_SPLIT = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class EnvelopeHeader:
    """What a response batch needs of an ``FHS`` or ``BHS`` (same layout for fields 1-12)."""

    field: str = "|"
    encoding: str = "^~\\&"
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    control_id: str = ""
    """``FHS-11`` / ``BHS-11``, echoed in the response's ``FHS-12`` / ``BHS-12``."""


@dataclass(frozen=True, slots=True)
class BatchPart:
    """One batch of a file: its ``BHS`` (None when messages come without one) and messages."""

    header: EnvelopeHeader | None
    messages: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class BatchFile:
    """An HL7 batch file as received: its ``FHS`` (None without one) and its batches."""

    header: EnvelopeHeader | None
    batches: tuple[BatchPart, ...]

    @property
    def messages(self) -> tuple[bytes, ...]:
        return tuple(m for part in self.batches for m in part.messages)


def _envelope(segment: bytes) -> EnvelopeHeader:
    text = segment.decode("latin-1")
    sep = text[3] if len(text) > 3 else "|"
    if sep.isalnum() or sep.isspace():
        return EnvelopeHeader()
    fields = text.split(sep)
    encoding = fields[1] if len(fields) > 1 and 1 <= len(fields[1]) <= 5 else "^~\\&"

    def at(n: int) -> str:
        return fields[n - 1][:199] if len(fields) >= n else ""

    return EnvelopeHeader(sep, encoding, at(3), at(4), at(5), at(6), at(11))


def split_batch(data: bytes) -> BatchFile | None:
    """The batches and messages of an HL7 batch file; None when ``data`` is not one (its first
    segment is neither ``FHS`` nor ``BHS``). ``BTS`` and ``FTS`` close what they close; a
    segment before any ``MSH`` of a batch starts a message of its own (which will be refused)."""
    if data.lstrip(b"\xef\xbb\xbf\x0b\x1c\r\n \t")[:3] not in (b"FHS", b"BHS"):
        return None  # the usual case, a message, seen without splitting it
    segments = [
        s
        for s in (
            x.strip(b"\x0b\x1c \t") for x in _SEGMENT_SPLIT.split(data.lstrip(b"\xef\xbb\xbf"))
        )
        if s
    ]
    if not segments or segments[0][:3] not in (b"FHS", b"BHS"):
        return None
    file_header: EnvelopeHeader | None = None
    parts: list[tuple[EnvelopeHeader | None, list[list[bytes]]]] = []
    open_batch = False
    for segment in segments:
        kind = segment[:3]
        if kind == b"FHS":
            file_header = file_header or _envelope(segment)
        elif kind == b"BHS":
            parts.append((_envelope(segment), []))
            open_batch = True
        elif kind == b"BTS":
            open_batch = False
        elif kind == b"FTS":
            continue
        else:
            if not open_batch and (not parts or parts[-1][0] is not None):
                parts.append((None, []))  # messages outside any BHS
                open_batch = True
            messages = parts[-1][1]
            if kind == b"MSH" or not messages:
                messages.append([])
            messages[-1].append(segment)
    return BatchFile(
        file_header,
        tuple(
            BatchPart(header, tuple(b"\r".join(m) + b"\r" for m in messages))
            for header, messages in parts
        ),
    )


def build_batch_ack(
    batch: BatchFile,
    acks: list[bytes],
    now: datetime,
    control_id: str,
    *,
    app: str = "SIDEP",
    facility: str = "SIDEP",
) -> bytes:
    """The response batch of ``batch``: ``acks`` are the ACKs of its messages, in order."""
    first = batch.header or next((p.header for p in batch.batches if p.header), None)
    f = first.field if first else "|"
    enc = first.encoding if first else "^~\\&"
    stamp = now.strftime("%Y%m%d%H%M%S")

    def head(kind: str, h: EnvelopeHeader | None, own_id: str) -> str:
        h = h or EnvelopeHeader()
        return f.join(
            [
                *(kind, enc, app, facility, h.sending_app, h.sending_facility, stamp),
                *("", "", "", own_id, h.control_id),  # FHS/BHS-8 to 12
            ]
        )

    lines: list[str] = []
    if batch.header is not None:
        lines.append(head("FHS", batch.header, control_id))
    left = iter(acks)
    for n, part in enumerate(batch.batches, start=1):
        lines.append(head("BHS", part.header, f"{control_id}.{n}"))
        for _ in part.messages:
            ack = next(left).decode("utf-8")
            lines.extend(s for s in ack.split(SEGMENT_END) if s)
        lines.append(f.join(["BTS", str(len(part.messages))]))
    if batch.header is not None:
        lines.append(f.join(["FTS", str(len(batch.batches))]))
    return (SEGMENT_END.join(lines) + SEGMENT_END).encode("utf-8")
