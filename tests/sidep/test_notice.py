"""The result notice of a positive: the QR code holds the code's signed link and reads back,
the texts say positive, isolate and the code; without a code, no QR and why."""

from __future__ import annotations

import io
import zlib
from datetime import UTC, date, datetime

import pytest
from PIL import Image

from sidep.issuer import IssuedCode
from sidep.notice import NoticeText, _qr_png, email_text, notice_pdf, sms_text
from sidep.service import international_phone

zxingcpp = pytest.importorskip("zxingcpp", reason="zxing-cpp (pip)")

LINK = "https://bonjour.tousanticovid.gouv.fr/app/code?code=1a2b3c4d-aaaa-bbbb-cccc-dddddddddddd&type=long"
CODE = IssuedCode(
    "1a2b3c4d-aaaa-bbbb-cccc-dddddddddddd", LINK, datetime(2026, 12, 25, 12, 0, tzinfo=UTC)
)
TEXT = NoticeText("Élodie Dupont-Lefèvre", date(2026, 12, 9), "750012345")


def test_the_qr_code_reads_back_as_the_link() -> None:
    image = Image.open(io.BytesIO(_qr_png(LINK)))
    found = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.QRCode)
    assert [f.text for f in found] == [LINK]


def test_the_pdf_carries_the_code_and_the_advice() -> None:
    pdf = notice_pdf(TEXT, CODE)
    assert pdf.startswith(b"%PDF") and b"/Subtype /Image" in pdf
    text = b"".join(
        zlib.decompress(chunk.split(b"stream\n", 1)[1].rsplit(b"\nendstream", 1)[0])
        for chunk in pdf.split(b"endobj")
        if b"/FlateDecode" in chunk and b"stream\n" in chunk and b"/Subtype /Image" not in chunk
    )
    assert b"POSITIF" in text and CODE.code.encode() in text and b"Isolez-vous" in text
    without = notice_pdf(TEXT, None)
    assert b"/Subtype /Image" not in without


def test_the_messages() -> None:
    sms = sms_text(TEXT.sampled_on, CODE)
    assert sms.isascii() and "09/12/2026" in sms and CODE.code in sms and "POSITIF" in sms
    assert CODE.code not in sms_text(TEXT.sampled_on, None)
    mail = email_text(TEXT, CODE)
    assert mail.startswith("Bonjour Élodie Dupont-Lefèvre,") and CODE.code in mail


@pytest.mark.parametrize(
    ("typed", "international"),
    [
        ("06 12 34 56 78", "+33612345678"),
        ("+33 6 12 34 56 78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("12", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_numbers(typed: str | None, international: str | None) -> None:
    assert international_phone(typed) == international
