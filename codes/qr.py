"""QR images of deep links: PNG (files for labs' systems, the PDF handout) and SVG.

Error correction M (15 %): a printed lab result survives a fold or a smudge, and a ~160
character link still fits a version 8 symbol that phones read at arm's length.
"""

from __future__ import annotations

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


def write_pngs(codes: Sequence[IssuedCode], directory: Path) -> int:
    """One ``<code>.png`` per code in ``directory``; how many were written."""
    directory.mkdir(parents=True, exist_ok=True)
    for issued in codes:
        (directory / f"{issued.record.code}.png").write_bytes(qr_png(issued.link))
    return len(codes)
