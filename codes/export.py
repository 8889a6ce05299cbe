"""What a lab's system takes in: a batch of codes as CSV, with its SHA-256 checksum.

The same file whether it comes from ``robert codes batch`` (pre-generated overnight, as French
labs received theirs) or from the lab's page: one header line, then one code a line, with its
signed deep link for the lab's own software to print as a QR code on the result. The checksum
file is in ``sha256sum -c`` format, so the receiving side checks the transfer with a standard
tool. A batch's CSV is the same bytes every time it is downloaded (codes in a stable order,
Ed25519 signatures deterministic), so its checksum can be shown on the page and compared.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Sequence

from codes.service import IssuedCode

CSV_HEADER = ("code", "type", "test_date", "org", "expires_at", "link")


def codes_csv(codes: Sequence[IssuedCode]) -> bytes:
    """The codes as UTF-8 CSV (``\\n`` line ends), expiry in ISO 8601 UTC: a machine's form."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    for c in codes:
        r = c.record
        writer.writerow([r.code, r.kind.value, r.test_date, r.org, c.expires_iso, c.link])
    return buffer.getvalue().encode()


def sha256_hex(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def checksum_line(data: bytes, filename: str) -> str:
    """The ``sha256sum`` line of ``data`` saved as ``filename``."""
    return f"{sha256_hex(data)}  {filename}\n"
