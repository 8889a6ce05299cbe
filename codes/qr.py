"""QR images of deep links (PNG, SVG) and printable sheets of codes (PDF, HTML).

Error correction M (15 %): a printed lab result survives a fold or a smudge, and a ~160
character link still fits a version 8 symbol that phones read at arm's length.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path

import qrcode
import qrcode.constants
from qrcode.image.svg import SvgPathImage

from codes.service import IssuedCode

_EC = qrcode.constants.ERROR_CORRECT_M


def _qr(data: str) -> qrcode.QRCode:  # type: ignore[type-arg]
    qr = qrcode.QRCode(error_correction=_EC, box_size=8, border=4)
    qr.add_data(data)
    qr.make(fit=True)
    return qr


def qr_png(data: str, box_size: int = 8) -> bytes:
    """A PNG of the QR code of ``data``."""
    qr = _qr(data)
    qr.box_size = box_size
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def qr_svg(data: str) -> str:
    """An SVG (one path, no external resources) of the QR code of ``data``."""
    out = io.BytesIO()
    _qr(data).make_image(image_factory=SvgPathImage).save(out)
    text = out.getvalue().decode()
    return text[text.index("<svg") :]  # drop the XML declaration so it can be inlined


def png_data_uri(data: str) -> str:
    """The PNG as a data: URI, for an <img> in a page with a strict CSP."""
    return "data:image/png;base64," + base64.b64encode(qr_png(data)).decode()


def write_pngs(codes: Sequence[IssuedCode], directory: Path) -> int:
    """One ``<code>.png`` per code in ``directory``; how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    for issued in codes:
        (directory / f"{issued.record.code}.png").write_bytes(qr_png(issued.link))
    return len(codes)


def sheet_html(codes: Sequence[IssuedCode], title: str = "Submission codes") -> str:
    """A page ready to print: one card per code, with QR, code, kind, test date and expiry."""
    from codes.web import templates

    cards = [(c, png_data_uri(c.link)) for c in codes]
    return templates().get_template("sheet.html").render(title=title, cards=cards)


def sheet_pdf(codes: Sequence[IssuedCode], title: str = "Submission codes") -> bytes:
    """An A4 PDF, 3 x 4 cards per page, each with the QR code and the code in clear."""
    from fpdf import FPDF

    pdf = FPDF(orientation="P", unit="mm", format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title(title)
    cols, rows, card_w, card_h, margin = 3, 4, 63.0, 68.0, 10.5
    for i, issued in enumerate(codes):
        slot = i % (cols * rows)
        if slot == 0:
            pdf.add_page()
            pdf.set_font("Helvetica", size=9)
            pdf.set_xy(margin, 4)
            pdf.cell(0, 5, title)
        x = margin + (slot % cols) * card_w
        y = 10 + (slot // cols) * card_h
        pdf.rect(x, y, card_w - 2, card_h - 2)
        image = io.BytesIO(qr_png(issued.link, box_size=6))
        pdf.image(image, x=x + 8.5, y=y + 1, w=44, h=44)
        r = issued.record
        pdf.set_font("Courier", "B", size=11 if r.kind == "short" else 7)
        pdf.set_xy(x + 1, y + 46)
        pdf.cell(card_w - 4, 5, r.code, align="C")
        pdf.set_font("Helvetica", size=7)
        for line, text in enumerate(
            (f"{r.kind} code - {r.org} - test {r.test_date}", f"valid until {issued.expires_iso}")
        ):
            pdf.set_xy(x + 1, y + 52 + 4 * line)
            pdf.cell(card_w - 4, 4, text, align="C")
    return bytes(pdf.output())


def write_sheet(codes: Sequence[IssuedCode], path: Path) -> None:
    """A PDF sheet if ``path`` ends in .pdf, else an HTML one."""
    if path.suffix.lower() == ".pdf":
        path.write_bytes(sheet_pdf(codes))
    else:
        path.write_text(sheet_html(codes), encoding="utf-8")
